//! `atomlens train columns`: train the learned column finder on synthetic scenes and write the
//! model with its scores on held-back scenes (what `crates/atomlens-core/models/` holds).
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use atomlens_core::learned::finder::{CALIBRATE_SEED, SCORE_SCENES, SCORE_SEED, SCORE_SIZE, Trainer};

use crate::files::{out_dir, write};

/// Which model.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Model {
    /// The column finder (`columns --finder learned`).
    Columns,
}

/// The options.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Which model to train.
    model: Model,
    /// Training steps (8 scenes of 64² px each).
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Seed of the initial weights and of the scenes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for `columns.net` and `columns.json` (scores, steps, seed, time).
    #[arg(long)]
    out: PathBuf,
}

/// Train, score and write.
pub fn train(a: TrainArgs) -> Result<()> {
    let Model::Columns = a.model;
    let t0 = Instant::now();
    let mut t = Trainer::new(a.steps, a.seed)?;
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    while let Some(loss) = t.step() {
        let (done, of) = t.progress();
        if tty || last.elapsed().as_secs() >= 30 || done == of {
            let avg = t.losses[t.losses.len().saturating_sub(50)..].iter().sum::<f32>() / t.losses.len().min(50) as f32;
            let end = if tty { "\r" } else { "\n" };
            eprint!("train columns: step {done} / {of}, loss {loss:.4} (last 50: {avg:.4}){end}");
            last = Instant::now();
        }
    }
    let mut model = t.model();
    model.calibrate(SCORE_SCENES, SCORE_SIZE, CALIBRATE_SEED);
    let train_s = t0.elapsed().as_secs_f64();
    let scores = model.score(SCORE_SCENES, SCORE_SIZE, SCORE_SEED);
    out_dir(&a.out)?;
    write(&a.out, "columns.net", model.to_bytes())?;
    let losses = &t.losses;
    let mean = |r: std::ops::Range<usize>| losses[r.clone()].iter().sum::<f32>() / r.len().max(1) as f32;
    let n = losses.len();
    let record = serde_json::json!({
        "model": "columns",
        "command": format!("atomlens train columns --steps {} --seed {}", a.steps, a.seed),
        "steps": a.steps,
        "seed": a.seed,
        "train_seconds": train_s.round(),
        "loss_first_50": mean(0..n.min(50)),
        "loss_last_50": mean(n.saturating_sub(50)..n),
        "scored_on": format!("{SCORE_SCENES} held-back scenes of {SCORE_SIZE}² px (seed {SCORE_SEED}), matched within 0.75 σ"),
        "threshold": model.threshold,
        "threshold_chosen_on": format!("the best F1 on {SCORE_SCENES} other scenes (seed {CALIBRATE_SEED})"),
        "scores": scores,
    });
    write(&a.out, "columns.json", format!("{}\n", serde_json::to_string_pretty(&record)?))?;
    eprintln!(
        "\ntrained in {train_s:.0} s; threshold {}; held-back scenes: recall {:.3}, precision {:.3}, RMS {:.2} px",
        model.threshold, scores.recall, scores.precision, scores.rms_px
    );
    Ok(())
}
