//! `zenith snapshot forget` and `zenith snapshot prune`.

use std::collections::BTreeSet;

use clap::Args;
use serde_json::json;
use zenith_snapshot::forget::{GroupBy, Keep, KeepDuration, KeepPolicy, apply_policy};
use zenith_snapshot::lock::Lock;
use zenith_snapshot::prune::{PruneOptions, PrunePlan, prune_locked};
use zenith_snapshot::{Id, Snapshot};

use super::CmdResult;
use super::snapshot::FilterArgs;
use crate::exit::{OK, usage};
use crate::output::{Out, bytes, local_time, table};
use crate::repo_open::RepoArgs;

fn keep(s: &str) -> Result<Keep, String> {
    match s {
        "unlimited" | "-1" => Ok(Keep::Unlimited),
        n => n
            .parse::<u32>()
            .map(Keep::Count)
            .map_err(|_| format!("{s:?} is not a count (a number, or `unlimited`)")),
    }
}

fn duration(s: &str) -> Result<KeepDuration, String> {
    s.parse::<KeepDuration>().map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to remove outright (ids, names or tags).
    pub snapshots: Vec<String>,
    /// Keep the newest N snapshots (N or `unlimited`).
    #[arg(long, value_name = "N", value_parser = keep)]
    pub keep_last: Option<Keep>,
    /// Keep the newest snapshot of each of the last N hours that have one (N or `unlimited`).
    #[arg(long, value_name = "N", value_parser = keep)]
    pub keep_hourly: Option<Keep>,
    /// Keep the newest snapshot of each of the last N days that have one (N or `unlimited`).
    #[arg(long, value_name = "N", value_parser = keep)]
    pub keep_daily: Option<Keep>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one (N or `unlimited`).
    #[arg(long, value_name = "N", value_parser = keep)]
    pub keep_weekly: Option<Keep>,
    /// Keep the newest snapshot of each of the last N months that have one (N or `unlimited`).
    #[arg(long, value_name = "N", value_parser = keep)]
    pub keep_monthly: Option<Keep>,
    /// Keep the newest snapshot of each of the last N years that have one (N or `unlimited`).
    #[arg(long, value_name = "N", value_parser = keep)]
    pub keep_yearly: Option<Keep>,
    /// Keep everything within this long of the newest snapshot (e.g. 1y2m3d4h).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within: Option<KeepDuration>,
    /// Keep one hourly snapshot for every period within DURATION of the newest.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within_hourly: Option<KeepDuration>,
    /// Keep one daily snapshot for every period within DURATION of the newest.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within_daily: Option<KeepDuration>,
    /// Keep one weekly snapshot for every period within DURATION of the newest.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within_weekly: Option<KeepDuration>,
    /// Keep one monthly snapshot for every period within DURATION of the newest.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within_monthly: Option<KeepDuration>,
    /// Keep one yearly snapshot for every period within DURATION of the newest.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within_yearly: Option<KeepDuration>,
    /// Keep snapshots with these tags (comma-separated tags must all match; repeat to OR).
    #[arg(long, value_name = "TAG[,TAG]")]
    pub keep_tag: Vec<String>,
    /// Apply the policy per group of host, paths and/or tags.
    #[arg(long, default_value = "host,paths")]
    pub group_by: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Run prune afterwards if anything was removed.
    #[arg(long)]
    pub prune: bool,
    /// Show what would be removed and why the rest is kept; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

impl ForgetArgs {
    fn policy(&self) -> KeepPolicy {
        KeepPolicy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within,
            within_hourly: self.keep_within_hourly,
            within_daily: self.keep_within_daily,
            within_weekly: self.keep_within_weekly,
            within_monthly: self.keep_within_monthly,
            within_yearly: self.keep_within_yearly,
            tags: self
                .keep_tag
                .iter()
                .map(|t| {
                    t.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .filter(|set| !set.is_empty())
                .collect(),
        }
    }
}

pub fn forget(a: ForgetArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let policy = a.policy();
    if a.snapshots.is_empty() && policy.is_empty() {
        return Err(
            usage("nothing to forget: name snapshots or give a policy (--keep-last N, --keep-daily N, …)").into(),
        );
    }
    let group_by: GroupBy = a
        .group_by
        .parse()
        .map_err(|e: zenith_snapshot::forget::ForgetError| usage(e.to_string()))?;
    let repo = args.open()?;
    let _lock = (!a.dry_run)
        .then(|| Lock::acquire(repo.backend(), true, "snapshot forget", args.retry_lock))
        .transpose()?;
    let all = repo.snapshots()?;
    let mut remove: BTreeSet<Id> = BTreeSet::new();
    for q in &a.snapshots {
        remove.insert(zenith_snapshot::snapshot::find(&all, q)?.id);
    }
    let mut groups = Vec::new();
    if !policy.is_empty() {
        let f = a.filter.to_filter();
        let items: Vec<_> = all.iter().filter(|s| f.matches(s)).map(Snapshot::forget_item).collect();
        groups = apply_policy(
            &items,
            &policy,
            group_by,
            jiff::Timestamp::now(),
            &jiff::tz::TimeZone::system(),
        );
        for g in &groups {
            for d in g.decisions.iter().filter(|d| !d.keep) {
                remove.insert(d.id.parse()?);
            }
        }
    }
    if !a.dry_run {
        for id in &remove {
            repo.remove_snapshot(id)?;
        }
    }
    let plan = if a.prune && !a.dry_run && !remove.is_empty() {
        let bar = out.progress();
        Some(prune_locked(&repo, &PruneOptions::default(), &bar)?)
    } else {
        None
    };
    if out.json() {
        out.print_json(&json!({
            "dry_run": a.dry_run,
            "groups": groups,
            "removed": remove.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            "prune": plan,
        }))?;
        return Ok(OK);
    }
    for g in &groups {
        let mut head = Vec::new();
        if let Some(h) = &g.key.host {
            head.push(format!("host {h}"));
        }
        if let Some(p) = &g.key.paths {
            head.push(format!("paths [{}]", p.join(", ")));
        }
        if let Some(t) = &g.key.tags {
            head.push(format!("tags [{}]", t.join(", ")));
        }
        println!(
            "snapshots for {}:",
            if head.is_empty() { "all".into() } else { head.join(", ") }
        );
        let mut t = table(&["id", "time", "decision", "reasons"]);
        for d in &g.decisions {
            t.add_row(vec![
                d.id[..8].to_string(),
                local_time(d.time),
                if d.keep { "keep" } else { "remove" }.to_string(),
                d.reasons.join(", "),
            ]);
        }
        println!("{t}\n");
    }
    let verb = if a.dry_run { "would remove" } else { "removed" };
    println!("{verb} {} snapshots", remove.len());
    if let Some(p) = &plan {
        print_plan(p, false);
    }
    Ok(OK)
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Show what would be removed and repacked; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Repack a pack when more than this percentage of it is unused.
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    pub max_unused: f64,
}

pub fn prune(a: PruneArgs, args: &RepoArgs, out: Out) -> CmdResult {
    if !(0.0..=100.0).contains(&a.max_unused) {
        return Err(usage("--max-unused takes a percentage from 0 to 100").into());
    }
    let repo = args.open()?;
    let opts = PruneOptions {
        max_unused: a.max_unused / 100.0,
        dry_run: a.dry_run,
        lock_wait: args.retry_lock,
    };
    let bar = out.progress();
    let plan = zenith_snapshot::prune::prune(&repo, &opts, &bar)?;
    if out.json() {
        out.print_json(&json!({"dry_run": a.dry_run, "plan": plan}))?;
    } else {
        print_plan(&plan, a.dry_run);
    }
    Ok(OK)
}

fn print_plan(p: &PrunePlan, dry_run: bool) {
    println!(
        "{} snapshots use {} of {} blobs; {} of {} in {} packs is unused",
        p.snapshots,
        p.blobs_used,
        p.blobs_used + p.blobs_unused,
        bytes(p.bytes_unused),
        bytes(p.bytes_total),
        p.packs_total
    );
    if p.is_noop() {
        println!("nothing to prune");
        return;
    }
    let will = if dry_run { "would" } else { "did" };
    println!(
        "{will} delete {} packs, repack {} packs ({} copied), remove {} unindexed packs; {} freed",
        p.packs_delete.len(),
        p.packs_repack.len(),
        bytes(p.bytes_repacked),
        p.packs_unindexed.len(),
        bytes(p.bytes_freed)
    );
}
