//! Content-defined chunking: FastCDC (2020) over a stream, with the repository's gear seed.
//!
//! Chunks average 64 KiB (16 KiB to 256 KiB). That is smaller than restic's 1 MiB on purpose:
//! a database file with scattered page writes then re-stores ~64 KiB per changed page instead
//! of ~1 MiB. The price, a larger index, is paid in index memory (see the format document).

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Chunk size bounds, stored in the repository config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min: 16 * 1024,
            avg: 64 * 1024,
            max: 256 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Chunks averaging `avg` bytes, from a quarter to four times that; `avg` must be a power
    /// of two from 4 KiB to 1 MiB (restic's size; larger chunks would make every buffer that
    /// holds a few chunks large).
    pub fn with_average(avg: u64) -> std::result::Result<ChunkerParams, String> {
        if !avg.is_power_of_two() || !(4 << 10..=1 << 20).contains(&avg) {
            return Err("the average chunk size must be a power of two from 4KiB to 1MiB".into());
        }
        let avg = avg as u32;
        let params = ChunkerParams {
            min: avg / 4,
            avg,
            max: avg * 4,
        };
        params.validate()?;
        Ok(params)
    }

    /// Check the bounds are ones FastCDC accepts.
    pub fn validate(&self) -> std::result::Result<(), String> {
        use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN};
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "chunker bounds min {} avg {} max {} are out of range",
                self.min, self.avg, self.max
            ))
        }
    }
}

/// A chunker ready to cut: the masks and gear tables derived from params and seed.
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Chunker {
    pub fn new(params: ChunkerParams, seed: u64) -> Chunker {
        let bits = fastcdc::v2020::logarithm2(params.avg);
        // Normalization level 1, FastCDC's default.
        let mask_s = fastcdc::v2020::MASKS[(bits + 1) as usize];
        let mask_l = fastcdc::v2020::MASKS[(bits - 1) as usize];
        let (gear, gear_ls) = fastcdc::v2020::get_gear_with_seed(seed);
        Chunker {
            params,
            mask_s,
            mask_l,
            gear,
            gear_ls,
        }
    }

    pub fn max_size(&self) -> usize {
        self.params.max as usize
    }

    /// Length of the next chunk at the start of `data`. `data` must hold at least `max` bytes
    /// unless it is the end of the stream.
    pub fn next_cut(&self, data: &[u8]) -> usize {
        fastcdc::v2020::cut_gear(
            data,
            self.params.min as usize,
            self.params.avg as usize,
            self.params.max as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }

    /// Cut everything `reader` yields into chunks, calling `f` with each one in order. Memory
    /// stays at one buffer of a few MiB whatever the stream's length.
    pub fn for_each_chunk(
        &self,
        reader: &mut dyn Read,
        buf: &mut Vec<u8>,
        mut f: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let want = (self.max_size() * 4).max(1 << 20);
        // The buffer is reused across files: grow it once, never clear it (zeroing a few MiB
        // per file costs more than cutting small files).
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let mut start = 0; // first unconsumed byte
        let mut end = 0; // end of valid data
        let mut eof = false;
        let mut total = 0u64;
        loop {
            while !eof && end - start < self.max_size() {
                if end == buf.len() {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                let n = read_retrying(reader, &mut buf[end..])?;
                if n == 0 {
                    eof = true;
                }
                end += n;
                total += n as u64;
            }
            if start == end {
                return Ok(total);
            }
            let len = self.next_cut(&buf[start..end]);
            f(&buf[start..start + len])?;
            start += len;
        }
    }
}

/// `read`, again after an interruption by a signal.
pub(crate) fn read_retrying(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunks_of(data: &[u8], seed: u64) -> Vec<Vec<u8>> {
        let c = Chunker::new(ChunkerParams::default(), seed);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        c.for_each_chunk(&mut &data[..], &mut buf, |ch| {
            out.push(ch.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn sizes_stay_in_bounds_and_average_near_target() {
        let data = pseudo_random(8 << 20, 7);
        let chunks = chunks_of(&data, 42);
        let p = ChunkerParams::default();
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.len() >= p.min as usize && c.len() <= p.max as usize);
        }
        let avg = data.len() / chunks.len();
        assert!((40_000..100_000).contains(&avg), "average chunk {avg}");
    }

    #[test]
    fn average_sizes_are_powers_of_two_in_range() {
        assert_eq!(ChunkerParams::with_average(64 << 10).unwrap(), ChunkerParams::default());
        let small = ChunkerParams::with_average(4 << 10).unwrap();
        assert_eq!((small.min, small.avg, small.max), (1 << 10, 4 << 10, 16 << 10));
        for bad in [0, 1000, 2 << 10, 48 << 10, 2 << 20] {
            assert!(ChunkerParams::with_average(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_edit_in_the_middle_changes_few_chunks() {
        let mut data = pseudo_random(4 << 20, 9);
        let before = chunks_of(&data, 1);
        data[2 << 20] ^= 0xff;
        let after = chunks_of(&data, 1);
        let changed = after.iter().filter(|c| !before.contains(c)).count();
        assert!(changed <= 3, "{changed} chunks changed");
    }

    proptest! {
        #[test]
        fn chunks_reassemble_to_the_input(len in 0usize..1_500_000, seed in any::<u64>()) {
            let data = pseudo_random(len, seed);
            let joined: Vec<u8> = chunks_of(&data, seed).concat();
            prop_assert_eq!(joined, data);
        }
    }
}
