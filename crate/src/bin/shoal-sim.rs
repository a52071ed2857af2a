//! `shoal-sim --scenario FILE [--seed N] [--json FILE] [--csv FILE] [--no-baseline]`
//!
//! Runs a scenario with Shoal and with P2P disabled over the same seed, prints the
//! comparison table on stdout, writes the JSON report and the time series when asked. The
//! only wall-clock figure (run time, events/s) goes to stderr, never into the report.
#![deny(unsafe_code)]

use shoal::sim::{self, Report, Scenario};
use std::process::ExitCode;
use std::time::Instant;

// Engines allocate and free a chunk-sized buffer per message and a segment-sized one per
// download; mimalloc serves these from per-size free lists (glibc's malloc spent about 10%
// of a 3,000-viewer run searching its bins and faulting pages back in).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory mapped instead of returning it to the kernel a second later: a run
/// frees and reallocates segment buffers all the time, and re-faulting (transparent huge)
/// pages cost about 6% of a 3,000-viewer run. The only unsafe code of the simulator.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc.h (v2 and v3); libmimalloc-sys names no constant.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: `mi_option_set` takes a plain option id and value; mimalloc documents it as
    // callable at any time, and `purge_delay = -1` only disables purging.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

const USAGE: &str = "usage: shoal-sim --scenario FILE [--seed N] [--json FILE] [--csv FILE] \
[--viewers N] [--duration S] [--byte-scale F] [--set-engine JSON] [--no-baseline]";

struct Args {
    scenario: String,
    seed: Option<u64>,
    json: Option<String>,
    csv: Option<String>,
    viewers: Option<u64>,
    duration: Option<u64>,
    byte_scale: Option<f64>,
    engine_patch: Option<String>,
    baseline: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        scenario: String::new(),
        seed: None,
        json: None,
        csv: None,
        viewers: None,
        duration: None,
        byte_scale: None,
        engine_patch: None,
        baseline: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenario" => a.scenario = val()?,
            "--seed" => a.seed = Some(val()?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--json" => a.json = Some(val()?),
            "--csv" => a.csv = Some(val()?),
            "--viewers" => a.viewers = Some(val()?.parse().map_err(|e| format!("--viewers: {e}"))?),
            "--duration" => {
                a.duration = Some(val()?.parse().map_err(|e| format!("--duration: {e}"))?)
            }
            "--byte-scale" => {
                a.byte_scale = Some(val()?.parse().map_err(|e| format!("--byte-scale: {e}"))?)
            }
            "--set-engine" => a.engine_patch = Some(val()?),
            "--no-baseline" => a.baseline = false,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.scenario.is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

/// Applies a partial camelCase engine config (JSON object) over the scenario's.
fn patch_engine(sc: &mut Scenario, patch: &str) -> Result<(), String> {
    let mut base = serde_json::to_value(&sc.engine).map_err(|e| e.to_string())?;
    let p: serde_json::Value =
        serde_json::from_str(patch).map_err(|e| format!("--set-engine: {e}"))?;
    let (Some(b), Some(p)) = (base.as_object_mut(), p.as_object()) else {
        return Err("--set-engine expects a JSON object".into());
    };
    for (k, v) in p {
        if !b.contains_key(k) {
            return Err(format!("--set-engine: unknown key {k}"));
        }
        b.insert(k.clone(), v.clone());
    }
    sc.engine = serde_json::from_value(base).map_err(|e| format!("--set-engine: {e}"))?;
    Ok(())
}

fn scale_groups(sc: &mut Scenario, viewers: u64) {
    let total = sc.viewer_count().max(1);
    let mut left = viewers;
    let n = sc.groups.len();
    for (i, g) in sc.groups.iter_mut().enumerate() {
        let c = if i + 1 == n {
            left
        } else {
            (g.count * viewers / total).min(left)
        };
        g.count = c;
        left -= c;
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.scenario);
            return ExitCode::from(2);
        }
    };
    let mut sc = match Scenario::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", args.scenario);
            return ExitCode::from(2);
        }
    };
    if let Some(s) = args.seed {
        sc.seed = s;
    }
    if let Some(d) = args.duration {
        sc.duration_s = d;
    }
    if let Some(b) = args.byte_scale {
        sc.byte_scale = b;
    }
    if let Some(n) = args.viewers {
        scale_groups(&mut sc, n);
    }
    if let Some(p) = &args.engine_patch {
        if let Err(e) = patch_engine(&mut sc, p) {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = sc.validate() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let t0 = Instant::now();
    // The baseline runs on a second thread beside the Shoal run (same reports as one after
    // the other: the worlds share nothing).
    let (shoal, baseline) = sim::run_both(&sc, args.baseline);
    let baseline = baseline.unwrap_or_default();
    let t_all = t0.elapsed();
    let report = Report::new(&sc, shoal, baseline);
    print!("{}", report.table());
    eprintln!(
        "timing: {:.2} s wall ({} + {} events, {:.0} events/s)",
        t_all.as_secs_f64(),
        report.shoal.events,
        report.baseline.events,
        (report.shoal.events + report.baseline.events) as f64 / t_all.as_secs_f64().max(1e-9),
    );
    if let Some(path) = &args.json {
        let json = match serde_json::to_string_pretty(&report) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("json: {e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("cannot write {path}: {e}");
            return ExitCode::from(1);
        }
    }
    if let Some(path) = &args.csv {
        if let Err(e) = std::fs::write(path, report.csv()) {
            eprintln!("cannot write {path}: {e}");
            return ExitCode::from(1);
        }
    }
    if report.shoal.violations > 0 || report.baseline.violations > 0 {
        eprintln!("invariant violations: see the report");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
