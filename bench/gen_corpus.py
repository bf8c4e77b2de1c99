#!/usr/bin/env python3
"""Deterministic benchmark corpus for zenith-vs-restic snapshot benchmarks.

Usage:
    gen_corpus.py OUT_DIR [--seed N] [--scale F]
    gen_corpus.py mutate OUT_DIR [--seed N] [--scale F]

Generate mode creates (sizes at --scale 1.0, about 1.25 GB in total):

    text/    ~28,000 small, compressible text files (prose, logs, JSON/INI
             configs), 2-36 KB each, nested a few directories deep, ~330 MB
    libs/    real shared libraries (*.so*) copied from the host's /usr/lib, in
             sorted order, up to ~200 MB (topped up with slightly modified
             duplicates if the host has fewer)
    blobs/   ~450 MB of incompressible random bytes in files of 1-64 MB
    db/main.db
             200 MB "database" file of 8 KiB pages (header with page number
             and CRC32, slot array, semi-compressible records, free space)
    CORPUS.json
             small description of how the corpus was generated

Everything except libs/ is a pure function of --seed and --scale; libs/ is a
deterministic function of the host's installed libraries.  All mtimes are set
to a fixed timestamp.

Mutate mode applies the benchmark's "1% change" in place:

    * appends a line or a few hundred bytes to 1% of the text files,
    * overwrites 200 random 8 KiB pages of db/main.db in place with new
      content (file size unchanged),
    * adds one new 8 MB random blob under blobs/.

(The page count and the blob size scale with --scale, which defaults to the
scale recorded in CORPUS.json.)  Mutations are deterministic from the seed;
running mutate a second time applies a further, different, deterministic
change.

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import struct
import sys
import sysconfig
import time
import zlib

KiB = 1024
MiB = 1024 * KiB

# Sizes at scale 1.0.
TEXT_FILES = 30_000
TEXT_MIN, TEXT_MAX = 2_000, 36_000          # log-uniform; mean ~11.8 KB -> ~350 MB
LIBS_BYTES = 200 * MiB
BLOB_BYTES = 450 * MiB
BLOB_MIN, BLOB_MAX = 1 * MiB, 64 * MiB
DB_BYTES = 200 * MiB
PAGE = 8 * KiB

MUTATE_TEXT_FRACTION = 0.01
MUTATE_DB_PAGES = 200
MUTATE_BLOB_BYTES = 8 * MiB

FIXED_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z
META_NAME = "CORPUS.json"
WRITE_BLOCK = 4 * MiB


def log(msg: str) -> None:
    print(f"[gen_corpus] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Vocabulary and token tables
# --------------------------------------------------------------------------

SYLLABLES = (
    "ka ri to na me su lo ve pa ti ro de ma ni ko sa le mi ra un in an er "
    "on al es or at ex co pro sta ble tion ment ver gen dat fil net sys con "
    "cor lin tra que ser vic por han dle mod ule cli ent buf fer ind ex"
).split()


def make_vocab(rng: random.Random, n: int) -> list[str]:
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        k = rng.choice((1, 2, 2, 2, 3, 3, 4))
        w = "".join(rng.choice(SYLLABLES) for _ in range(k))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def zipf_table(rng: random.Random, tokens: list[bytes], size: int = 65536) -> list[bytes]:
    """A table of `size` tokens, drawn with Zipf(1) weights, for fast sampling
    via 16-bit random indices."""
    weights = [1.0 / (r + 1) for r in range(len(tokens))]
    table = rng.choices(tokens, weights=weights, k=size)
    return table


class Text:
    """Fast generators for realistic, compressible text."""

    FUNCTION_WORDS = ("the of and to a in is that for it as with was on be by this are "
                      "from or at an not which but have has can will if all each when "
                      "then into only may more").split()

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.vocab = make_vocab(rng, 6000)
        rng.shuffle(self.vocab)
        # Function words first so that the most frequent tokens are short,
        # as in natural language; then the generated vocabulary.
        ranked = self.FUNCTION_WORDS + self.vocab
        table = zipf_table(rng, [w.encode() for w in ranked])
        for i in range(len(table)):
            w = table[i]
            if i % 199 == 7:
                table[i] = w + b".\n\n"
            elif i % 17 == 5:
                table[i] = w + b".\n"
            elif i % 13 == 0:
                table[i] = w + b", "
            else:
                table[i] = w + b" "
        self.prose_table = table
        self.levels = [b"DEBUG", b"INFO ", b"INFO ", b"INFO ", b"INFO ", b"WARN ", b"ERROR"]
        self.components = [("svc-" + w).encode() for w in self.vocab[:40]]
        self.keys = [w.encode() for w in self.vocab[:300]]
        self.paths = [("/api/v%d/%s/%s" % (rng.randint(1, 3), rng.choice(self.vocab[:200]),
                                           rng.choice(self.vocab[:800]))).encode() for _ in range(500)]
        # Pools of config entries ("key": value) reused by config files.
        self.json_entries = [self._json_entry() for _ in range(20000)]
        self.ini_entries = [self._ini_entry() for _ in range(20000)]
        self._minute_cache: dict[int, bytes] = {}

    def tokens(self, n: int) -> bytes:
        idx = memoryview(self.rng.randbytes(2 * n)).cast("H")
        return b"".join(map(self.prose_table.__getitem__, idx))

    def prose(self, size: int) -> bytes:
        r = self.rng
        parts = [b"# ", self.tokens(r.randint(3, 8)).rstrip(b" ,.\n"), b"\n\n"]
        have = sum(map(len, parts))
        while have < size:
            chunk = self.tokens(max(16, (size - have) // 6 + 8))
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)[:size] + b"\n"

    def _minute(self, minute: int) -> bytes:
        v = self._minute_cache.get(minute)
        if v is None:
            tm = time.gmtime(minute * 60)
            v = b"%04d-%02d-%02dT%02d:%02d:" % (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min)
            if len(self._minute_cache) > 100_000:
                self._minute_cache.clear()
            self._minute_cache[minute] = v
        return v

    def logs(self, size: int) -> bytes:
        r = self.rng
        ts = r.randint(1_690_000_000_000, 1_700_000_000_000)
        comp = r.choice(self.components)
        out: list[bytes] = []
        have = 0
        rint = r.randint
        choice = r.choice
        bits = r.getrandbits
        levels, paths, keys, table = self.levels, self.paths, self.keys, self.prose_table
        words = lambda n: b" ".join(t.rstrip(b" ,.\n") for t in map(table.__getitem__, r.choices(range(65536), k=n)))
        while have < size:
            ts += rint(1, 4000)
            sec, ms = divmod(ts, 1000)
            kind = bits(2)
            if kind == 0:
                msg = b"request handled method=GET path=%s status=%d dur_ms=%d bytes=%d" % (
                    choice(paths), choice((200, 200, 200, 201, 204, 304, 404, 500)),
                    bits(11), bits(20))
            elif kind == 1:
                msg = b"%s %s=%d %s=%s" % (words(rint(3, 9)), choice(keys), bits(16),
                                           choice(keys), choice(keys))
            elif kind == 2:
                msg = b"trace_id=%032x span=%016x %s" % (bits(128), bits(64), words(rint(2, 6)))
            else:
                msg = b"worker=%d queue=%s depth=%d retry=%d" % (
                    bits(6), choice(keys), bits(12), bits(2))
            line = b"%s%02d.%03dZ %s [%s] %s\n" % (
                self._minute(sec // 60), sec % 60, ms, choice(levels), comp, msg)
            out.append(line)
            have += len(line)
        return b"".join(out)[:size]

    def _json_value(self) -> bytes:
        r = self.rng
        k = r.randint(0, 9)
        if k == 0:
            return b"[" + b", ".join(b"%d" % r.randint(0, 10000) for _ in range(r.randint(1, 8))) + b"]"
        if k <= 3:
            return b"%d" % r.randint(0, 1 << 20)
        if k == 4:
            return r.choice((b"true", b"false", b"null"))
        if k == 5:
            return b'"%s-%08x"' % (r.choice(self.vocab[:500]).encode(), r.getrandbits(32))
        if k == 6:
            return b"%.4f" % r.random()
        return b'"' + " ".join(r.choices(self.vocab[:2000], k=r.randint(1, 4))).encode() + b'"'

    def _key(self) -> bytes:
        r = self.rng
        key = r.choice(self.vocab[:400])
        if r.random() < 0.4:
            key += "_" + r.choice(self.vocab[:100])
        return key.encode()

    def _json_entry(self) -> bytes:
        return b'"%s": %s' % (self._key(), self._json_value())

    def _ini_entry(self) -> bytes:
        return b"%s = %s" % (self._key(), self._json_value())

    def _json_obj(self, depth: int, n: int) -> bytes:
        r = self.rng
        pad = b"  " * (depth + 1)
        items = []
        for e in r.choices(self.json_entries, k=n):
            if depth < 3 and r.random() < 0.12:
                e = b'"%s": %s' % (self._key(), self._json_obj(depth + 1, r.randint(2, 6)))
            items.append(pad + e)
        return b"{\n" + b",\n".join(items) + b"\n" + b"  " * depth + b"}"

    def config(self, size: int, ini: bool) -> bytes:
        r = self.rng
        out: list[bytes] = []
        have = 0
        while have < size:
            if ini:
                s = b"[%s.%s]\n%s\n\n" % (
                    r.choice(self.keys), r.choice(self.keys),
                    b"\n".join(r.choices(self.ini_entries, k=r.randint(3, 12))))
            else:
                s = self._json_obj(0, r.randint(4, 12)) + b"\n"
            out.append(s)
            have += len(s)
        return b"".join(out)[:size]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def write_random(path: str, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(WRITE_BLOCK, left)
            f.write(rng.randbytes(n))
            left -= n


def set_fixed_mtimes(root: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (FIXED_MTIME, FIXED_MTIME))
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        os.utime(dirpath, (FIXED_MTIME, FIXED_MTIME))


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------

def gen_text(out: str, seed: int, scale: float) -> tuple[int, int]:
    rng = random.Random(f"zenith-bench-text-{seed}")
    tx = Text(rng)
    nfiles = max(10, round(TEXT_FILES * scale))
    # Directory tree: text/<area>/<module>/<sub>/ ; ~30 files per leaf.
    nleaves = max(1, nfiles // 30)
    vocab = tx.vocab[1000:]
    leaves: list[str] = []
    areas = [f"{a:02d}-{vocab[a]}" for a in range(max(1, min(24, round(math.sqrt(nleaves) / 2))))]
    i = 0
    while len(leaves) < nleaves:
        area = areas[i % len(areas)]
        module = vocab[100 + (i // len(areas)) % 400]
        depth = rng.choice((1, 2, 2, 3))
        parts = [out, "text", area, module]
        for d in range(depth - 1):
            parts.append(vocab[600 + rng.randrange(800)])
        leaf = os.path.join(*parts) + f"-{i}"
        leaves.append(leaf)
        i += 1
    for leaf in leaves:
        os.makedirs(leaf, exist_ok=True)
    total = 0
    lo, hi = math.log(TEXT_MIN), math.log(TEXT_MAX)
    for n in range(nfiles):
        leaf = leaves[n % nleaves]
        size = int(math.exp(rng.uniform(lo, hi)))
        kind = rng.random()
        name = vocab[rng.randrange(len(vocab))]
        if kind < 0.40:
            data = tx.prose(size)
            ext = rng.choice((".md", ".txt", ".rst"))
        elif kind < 0.75:
            data = tx.logs(size)
            ext = ".log"
        elif kind < 0.90:
            data = tx.config(size, ini=False)
            ext = ".json"
        else:
            data = tx.config(size, ini=True)
            ext = ".ini"
        path = os.path.join(leaf, f"{name}-{n:05d}{ext}")
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
    return nfiles, total


def find_libraries(extra_roots: list[str]) -> list[str]:
    roots: list[str] = list(extra_roots)
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        roots.append(os.path.join("/usr/lib", multiarch))
    roots += ["/usr/lib", "/usr/lib64", "/lib"]
    pat = re.compile(r"\.so(\.\d+)*$")
    seen_real: set[str] = set()
    found: list[str] = []
    for root in roots:
        if not os.path.isdir(root):
            continue
        batch: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in filenames:
                if pat.search(name):
                    batch.append(os.path.join(dirpath, name))
        for p in sorted(batch):
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            real = os.path.realpath(p)
            if real in seen_real:
                continue
            try:
                with open(p, "rb") as f:
                    if f.read(4) != b"\x7fELF":
                        continue
            except OSError:
                continue
            seen_real.add(real)
            found.append(p)
    return found


def gen_libs(out: str, seed: int, scale: float, lib_roots: list[str]) -> tuple[int, int]:
    target = int(LIBS_BYTES * scale)
    libdir = os.path.join(out, "libs")
    os.makedirs(libdir, exist_ok=True)
    total = 0
    copied: list[str] = []
    max_one = max(64 * KiB, min(32 * MiB, target // 4))
    for src in find_libraries(lib_roots):
        if total >= target:
            break
        size = os.path.getsize(src)
        if size == 0 or size > max_one or total + size > target:
            continue
        dst = os.path.join(libdir, src.lstrip("/"))
        if os.path.exists(dst):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        copied.append(dst)
        total += size
    n = len(copied)
    if not copied and total < target:
        log("WARNING: no shared libraries found; libs/ will hold random ELF-like data")
        rng = random.Random(f"zenith-bench-libs-{seed}")
        dst = os.path.join(libdir, "libsynthetic.so")
        with open(dst, "wb") as f:
            f.write(b"\x7fELF" + rng.randbytes(min(4 * MiB, target)))
        copied.append(dst)
        total += os.path.getsize(dst)
        n += 1
    # Top up with slightly modified duplicates if the host has too few.
    rng = random.Random(f"zenith-bench-libdup-{seed}")
    gen = 0
    while total < target * 0.98:
        gen += 1
        for src in list(copied):
            if total >= target * 0.98:
                break
            data = bytearray(open(src, "rb").read())
            for _ in range(8):
                off = rng.randrange(len(data))
                patch = rng.randbytes(min(64, len(data) - off))
                data[off:off + len(patch)] = patch
            data = data[: target - total] if total + len(data) > target else data
            dst = f"{src}.dup{gen}"
            with open(dst, "wb") as f:
                f.write(data)
            total += len(data)
            n += 1
    return n, total


def gen_blobs(out: str, seed: int, scale: float) -> tuple[int, int]:
    rng = random.Random(f"zenith-bench-blobs-{seed}")
    target = int(BLOB_BYTES * scale)
    d = os.path.join(out, "blobs")
    os.makedirs(d, exist_ok=True)
    total = 0
    n = 0
    while total < target:
        size = rng.randint(BLOB_MIN, BLOB_MAX)
        size = min(size, target - total)
        if target - total - size < BLOB_MIN // 2:
            size = target - total  # avoid a tiny trailing blob
        write_random(os.path.join(d, f"blob-{n:03d}.bin"), size, rng)
        total += size
        n += 1
    return n, total


class PageGen:
    """Builds 8 KiB database-like pages.

    Layout: 24-byte header (magic, page number, CRC32 of the rest of the
    page, page type, record count, free-space pointer, LSN), a slot array of
    u16 record offsets growing up, records packed from the end of the page
    growing down, and zeroed free space in between.  Records mix repeated
    field names, small/sequential integers, short strings from a
    vocabulary, and random bytes.
    """

    HDR = struct.Struct("<4sIIHHHxxI")  # magic, pageno, crc, type, nrec, free, lsn
    FIELDS = [b"status", b"email", b"region", b"plan", b"tags", b"created_at"]
    STATUSES = [b"active", b"inactive", b"pending", b"suspended", b"deleted"]
    REGIONS = [b"eu-west-1", b"us-east-1", b"us-west-2", b"ap-south-1", b"sa-east-1"]
    PLANS = [b"free", b"pro", b"team", b"enterprise"]

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.words = [w.encode() for w in make_vocab(rng, 800)]
        self.rowid = 1

    def record(self) -> bytes:
        r = self.rng
        self.rowid += r.randint(1, 3)
        ints = struct.pack("<QIiH", self.rowid, r.getrandbits(32), r.randint(-100000, 100000),
                           r.randint(0, 500))
        strs = b"status=%s;email=%s.%s@example.com;region=%s;plan=%s;created_at=%d;" % (
            r.choice(self.STATUSES), r.choice(self.words), r.choice(self.words),
            r.choice(self.REGIONS), r.choice(self.PLANS),
            1_600_000_000 + r.getrandbits(26))
        payload = r.randbytes(r.randint(16, 120))
        body = b"\x01" + ints + strs + b"blob=" + payload
        return struct.pack("<H", len(body)) + body

    def page(self, pageno: int, lsn: int) -> bytes:
        r = self.rng
        fill = r.uniform(0.55, 0.97) * (PAGE - self.HDR.size)
        recs: list[bytes] = []
        used = 0
        while True:
            rec = self.record()
            if used + len(rec) + 2 * (len(recs) + 1) > fill:
                break
            recs.append(rec)
            used += len(rec)
        heap = b"".join(reversed(recs))
        offsets = []
        off = PAGE
        for rec in recs:
            off -= len(rec)
            offsets.append(off)
        slots = struct.pack("<%dH" % len(offsets), *offsets)
        free_start = self.HDR.size + len(slots)
        gap = PAGE - free_start - len(heap)
        body = slots + bytes(gap) + heap
        crc = zlib.crc32(body)
        hdr = self.HDR.pack(b"ZDBP", pageno, crc, 1 + (pageno % 3 == 0), len(recs), free_start, lsn)
        page = hdr + body
        assert len(page) == PAGE, len(page)
        return page


def gen_db(out: str, seed: int, scale: float) -> tuple[int, int]:
    rng = random.Random(f"zenith-bench-db-{seed}")
    pages = max(16, int(DB_BYTES * scale) // PAGE)
    d = os.path.join(out, "db")
    os.makedirs(d, exist_ok=True)
    pg = PageGen(rng)
    with open(os.path.join(d, "main.db"), "wb") as f:
        buf: list[bytes] = []
        for n in range(pages):
            buf.append(pg.page(n, 1000 + n))
            if len(buf) >= 512:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    return 1, pages * PAGE


def generate(out: str, seed: int, scale: float, lib_roots: list[str]) -> None:
    if os.path.exists(out) and os.listdir(out):
        sys.exit(f"gen_corpus: output directory {out!r} exists and is not empty")
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    stats = {}
    for name, fn in (("text", lambda: gen_text(out, seed, scale)),
                     ("libs", lambda: gen_libs(out, seed, scale, lib_roots)),
                     ("blobs", lambda: gen_blobs(out, seed, scale)),
                     ("db", lambda: gen_db(out, seed, scale))):
        t = time.time()
        files, size = fn()
        stats[name] = {"files": files, "bytes": size}
        log(f"{name:5s}: {files:6d} files {size / MiB:9.1f} MiB  ({time.time() - t:.1f}s)")
    meta = {
        "generator": "bench/gen_corpus.py",
        "seed": seed,
        "scale": scale,
        "sections": stats,
        "total_bytes": sum(s["bytes"] for s in stats.values()),
        "total_files": sum(s["files"] for s in stats.values()),
    }
    with open(os.path.join(out, META_NAME), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    set_fixed_mtimes(out)
    log(f"total: {meta['total_files']} files, {meta['total_bytes'] / MiB:.1f} MiB "
        f"in {time.time() - t0:.1f}s -> {out}")


# --------------------------------------------------------------------------
# Mutation ("the 1% change")
# --------------------------------------------------------------------------

def mutate(out: str, seed: int, scale: float | None) -> None:
    meta_path = os.path.join(out, META_NAME)
    if not os.path.isdir(os.path.join(out, "text")) or not os.path.isfile(os.path.join(out, "db", "main.db")):
        sys.exit(f"gen_corpus mutate: {out!r} does not look like a generated corpus")
    if scale is None:
        try:
            with open(meta_path) as f:
                scale = float(json.load(f)["scale"])
        except (OSError, ValueError, KeyError):
            scale = 1.0
    blobdir = os.path.join(out, "blobs")
    os.makedirs(blobdir, exist_ok=True)
    generation = sum(1 for n in os.listdir(blobdir) if n.startswith("mutation-"))
    rng = random.Random(f"zenith-bench-mutate-{seed}-{generation}")
    t0 = time.time()

    # 1. Append to 1% of the text files.
    texts: list[str] = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(out, "text")):
        dirnames.sort()
        for name in sorted(filenames):
            texts.append(os.path.join(dirpath, name))
    texts.sort()
    k = max(1, round(len(texts) * MUTATE_TEXT_FRACTION))
    tx = Text(random.Random(f"zenith-bench-text-{seed}"))  # same vocabulary as generation
    tx.rng = rng
    appended = 0
    for path in rng.sample(texts, k):
        if path.endswith(".log"):
            add = tx.logs(rng.randint(100, 400))
            add = add[: add.rfind(b"\n") + 1] or add + b"\n"
        else:
            add = b"\n" + tx.tokens(rng.randint(15, 80)) + b"\n"
        with open(path, "ab") as f:
            f.write(add)
        appended += len(add)

    # 2. Overwrite random pages of db/main.db in place.
    db = os.path.join(out, "db", "main.db")
    dbsize = os.path.getsize(db)
    npages = dbsize // PAGE
    nmut = min(npages, max(1, round(MUTATE_DB_PAGES * scale)))
    pg = PageGen(rng)
    pg.rowid = rng.getrandbits(40)
    with open(db, "r+b") as f:
        for pageno in sorted(rng.sample(range(npages), nmut)):
            f.seek(pageno * PAGE)
            f.write(pg.page(pageno, 5_000_000 + generation * 100_000 + pageno))
    assert os.path.getsize(db) == dbsize

    # 3. One new random blob.
    blob_size = max(64 * KiB, int(MUTATE_BLOB_BYTES * scale))
    blob = os.path.join(blobdir, f"mutation-{seed}-{generation:03d}.bin")
    write_random(blob, blob_size, rng)

    log(f"mutate (generation {generation}): appended {appended} bytes to {k}/{len(texts)} text files, "
        f"rewrote {nmut}/{npages} db pages, added {blob_size / MiB:.2f} MiB blob "
        f"({time.time() - t0:.1f}s)")


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def main(argv: list[str]) -> None:
    if argv and argv[0] == "mutate":
        p = argparse.ArgumentParser(prog="gen_corpus.py mutate",
                                    description="Apply the deterministic 1%% change to a corpus in place.")
        p.add_argument("out_dir")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--scale", type=float, default=None,
                       help="size scale (default: read from CORPUS.json, else 1.0)")
        a = p.parse_args(argv[1:])
        mutate(a.out_dir, a.seed, a.scale)
        return
    p = argparse.ArgumentParser(
        prog="gen_corpus.py",
        description="Generate a deterministic benchmark corpus (~1.25 GB at scale 1.0). "
                    "Use 'gen_corpus.py mutate OUT_DIR' to apply the 1%% change.")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="multiply all sizes/counts (e.g. 0.05)")
    p.add_argument("--lib-dir", action="append", default=[],
                   help="extra directory to take shared libraries from (searched first)")
    a = p.parse_args(argv)
    if a.scale <= 0:
        p.error("--scale must be positive")
    generate(a.out_dir, a.seed, a.scale, a.lib_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
