//! The console progress bar (Spark's `ConsoleProgressBar`): while stages run, the
//! last line of stderr shows `[Stage 3:=====>        (12 + 2) / 50]`, that is the
//! completed and running tasks of all, up to three stages side by side, redrawn
//! at most every 200 ms and erased when no stage runs. Drawn only when stderr is
//! a terminal and `spark.ui.showConsoleProgress` (default: on for a terminal) is
//! on; a stage shows once it has run for `ember.ui.consoleProgress.firstDelay`
//! (500 ms).

use crate::listener::{Event, Listener, TaskStatus};
use ember_core::config::Conf;
use ember_core::error::Result;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(200);

struct StageProgress {
    total: usize,
    completed: usize,
    active: usize,
    since: Instant,
}

/// The progress bar, a bus listener.
pub struct ConsoleProgress {
    out: Box<dyn Write + Send>,
    width: usize,
    first_delay: Duration,
    stages: BTreeMap<(u32, u32), StageProgress>,
    last_drawn: Option<Instant>,
    /// Length of the line on screen (0: nothing drawn).
    shown: usize,
}

/// The terminal's width in columns (`COLUMNS`, else the terminal's, else 80).
fn terminal_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()) {
        return c.max(20);
    }
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass and nothing else.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col >= 20 { size.ws_col as usize } else { 80 }
}

impl ConsoleProgress {
    /// The bar for this process's stderr, when it is a terminal and the setting allows.
    ///
    /// Errors: a malformed setting.
    pub fn from_conf(conf: &Conf) -> Result<Option<Self>> {
        let terminal = std::io::stderr().is_terminal();
        if !terminal || !conf.get_bool("spark.ui.showConsoleProgress", true)? {
            return Ok(None);
        }
        let first_delay = conf.get_duration("ember.ui.consoleProgress.firstDelay", Duration::from_millis(500))?;
        Ok(Some(Self::new(Box::new(std::io::stderr()), terminal_width(), first_delay)))
    }

    /// A bar drawn to `out`, `width` columns wide.
    pub fn new(out: Box<dyn Write + Send>, width: usize, first_delay: Duration) -> Self {
        Self { out, width, first_delay, stages: BTreeMap::new(), last_drawn: None, shown: 0 }
    }

    /// The line for the stages shown (Spark's layout).
    fn line(&self) -> String {
        let now = Instant::now();
        let shown: Vec<(&(u32, u32), &StageProgress)> =
            self.stages.iter().filter(|(_, s)| now.duration_since(s.since) >= self.first_delay).take(3).collect();
        if shown.is_empty() {
            return String::new();
        }
        let width = self.width / shown.len();
        shown
            .iter()
            .map(|((id, _), s)| {
                let header = format!("[Stage {id}:");
                let tailer = format!("({} + {}) / {}]", s.completed, s.active, s.total);
                let w = width.saturating_sub(header.len() + tailer.len());
                let done = (w * s.completed.min(s.total)).checked_div(s.total).unwrap_or(w);
                let bar: String = (0..w)
                    .map(|i| {
                        if i < done {
                            '='
                        } else if i == done {
                            '>'
                        } else {
                            ' '
                        }
                    })
                    .collect();
                format!("{header}{bar}{tailer}")
            })
            .collect()
    }

    fn draw(&mut self, force: bool) {
        if !force && self.last_drawn.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
            return;
        }
        let line = self.line();
        if line.is_empty() && self.shown == 0 {
            return;
        }
        self.last_drawn = Some(Instant::now());
        let pad = self.shown.saturating_sub(line.len());
        let _ = write!(self.out, "\r{line}{}", " ".repeat(pad));
        if line.is_empty() {
            let _ = write!(self.out, "\r");
        }
        let _ = self.out.flush();
        self.shown = line.len();
    }
}

impl Listener for ConsoleProgress {
    fn name(&self) -> &'static str {
        "consoleProgress"
    }

    fn on_event(&mut self, event: &Event) {
        match event {
            Event::StageSubmitted(e) => {
                let progress =
                    StageProgress { total: e.stage.num_tasks, completed: 0, active: 0, since: Instant::now() };
                self.stages.insert((e.stage.stage_id, e.stage.attempt), progress);
            }
            Event::TaskStart(e) => {
                if let Some(s) = self.stages.get_mut(&(e.task.stage_id, e.task.stage_attempt)) {
                    s.active += 1;
                }
                self.draw(false);
            }
            Event::TaskEnd(e) => {
                if let Some(s) = self.stages.get_mut(&(e.task.stage_id, e.task.stage_attempt)) {
                    s.active = s.active.saturating_sub(1);
                    s.completed += (e.status == TaskStatus::Success) as usize;
                }
                self.draw(false);
            }
            Event::StageCompleted(e) => {
                self.stages.remove(&(e.stage_id, e.attempt));
                self.draw(true);
            }
            _ => {}
        }
    }

    fn on_stop(&mut self) {
        self.stages.clear();
        self.draw(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::{StageInfo, StageKind, StageSubmitted};

    #[test]
    fn sparks_layout() {
        let mut p = ConsoleProgress::new(Box::new(std::io::sink()), 40, Duration::ZERO);
        p.on_event(&Event::StageSubmitted(StageSubmitted {
            job_id: 0,
            time_ms: 0,
            stage: StageInfo {
                stage_id: 3,
                attempt: 0,
                name: "map".into(),
                kind: StageKind::ResultStage,
                num_tasks: 50,
                parent_ids: vec![],
                rdds: vec![],
            },
        }));
        let s = p.stages.get_mut(&(3, 0)).expect("stage");
        s.completed = 25;
        s.active = 2;
        assert_eq!(p.line(), "[Stage 3:========>        (25 + 2) / 50]");
        assert_eq!(p.line().len(), 40);
    }
}
