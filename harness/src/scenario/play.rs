//! Playing a scenario a step at a time on a running ecosystem, for an audience: the
//! dashboard's player. Each step shows a narration line (the step's `say`, or what it
//! does and which requirement it verifies) before it runs; the trainer runs the next
//! step, or the rest, when the room is ready.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ecosim_domain::codes::CodiceFiscale;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::actions;
use super::model::{Scenario, Step};
use super::runner::Runner;
use crate::ecosystem::EcoHandle;

/// What the trainer asks for.
#[derive(Debug)]
pub enum PlayCommand {
    /// Run the next step; answered when it has run.
    Step(oneshot::Sender<()>),
    /// Run every step left; answered when they have run.
    Rest(oneshot::Sender<()>),
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not run yet.
    Pending,
    /// Running now.
    Running,
    /// Ran, and what it expected happened.
    Passed,
    /// Ran, and something else happened (`message` says what).
    Failed,
}

/// One step as the room sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PlayedStep {
    /// The action and whom it concerns (`lab.report mario`).
    pub action: String,
    /// The narration line, its variables filled in when the step comes up.
    pub narration: String,
    /// Requirement ids the step verifies.
    pub verifies: Vec<String>,
    /// Where it stands.
    pub state: StepState,
    /// What went wrong, for a failed step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A play in progress.
#[derive(Debug, Clone, Serialize)]
pub struct PlayState {
    /// The scenario's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The citizens it picked: name -> codice fiscale.
    pub citizens: std::collections::BTreeMap<String, String>,
    /// Every step.
    pub steps: Vec<PlayedStep>,
    /// The index of the next step to run (`steps.len()` when done).
    pub next: usize,
    /// Why the play could not start (no citizen left, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The narration of `step` before it runs: its `say` (rendered with what earlier
/// steps captured), else what it does and the requirements it checks.
fn narration(runner: &Runner<'_>, step: &Step) -> String {
    if let Some(say) = &step.say {
        return runner.render(say).unwrap_or_else(|_| say.clone());
    }
    let what = actions::describe(step);
    let why: Vec<String> = step
        .verifies
        .iter()
        .map(|id| match ecosim_reports::requirement(id) {
            Some(r) => format!("{id}: {}", r.text),
            None => id.clone(),
        })
        .collect();
    if why.is_empty() { what } else { format!("{what} (checks {})", why.join("; ")) }
}

/// The state a play starts in: every step pending, narrated as written.
pub fn initial(scenario: &Scenario) -> PlayState {
    PlayState {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        citizens: Default::default(),
        steps: scenario
            .steps
            .iter()
            .map(|s| PlayedStep {
                action: actions::describe(s),
                narration: s.say.clone().unwrap_or_else(|| actions::describe(s)),
                verifies: s.verifies.clone(),
                state: StepState::Pending,
                message: None,
            })
            .collect(),
        next: 0,
        error: None,
    }
}

/// What a play needs besides its scenario: where, with what seed, who was taken
/// before, where to keep its state, and whom to tell it is ready (citizens picked).
#[derive(Debug)]
pub struct Stage {
    /// The running ecosystem.
    pub eco: EcoHandle,
    /// Seed of the play's app.
    pub seed: u64,
    /// Citizens earlier plays picked.
    pub taken: Arc<Mutex<HashSet<CodiceFiscale>>>,
    /// The play's state, for whoever shows it.
    pub state: Arc<Mutex<PlayState>>,
    /// Told once the citizens are picked (or the play could not start).
    pub ready: oneshot::Sender<()>,
}

/// Plays `scenario` on `stage` as `commands` ask, keeping the stage's state up to
/// date; citizens already taken (earlier plays) are not picked again. Ends when
/// every step ran or the commands' sender is dropped.
pub async fn play(scenario: Scenario, stage: Stage, mut commands: mpsc::Receiver<PlayCommand>) {
    let Stage { eco, seed, taken, state, ready } = stage;
    let set = |f: &dyn Fn(&mut PlayState)| f(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
    let mut runner = Runner::new(&eco, seed, Default::default());
    let picked = {
        let mut taken = taken.lock().unwrap_or_else(|p| p.into_inner());
        runner.pick_citizens(&scenario.given.citizens, &mut taken)
    };
    if let Err(e) = picked {
        set(&|s| s.error = Some(e.to_string()));
        let _ = ready.send(());
        return;
    }
    let citizens: std::collections::BTreeMap<String, String> = scenario
        .given
        .citizens
        .keys()
        .filter_map(|name| runner.citizen(name).ok().map(|c| (name.clone(), c.codice_fiscale().to_string())))
        .collect();
    let first = scenario.steps.first().map(|s| narration(&runner, s));
    set(&|s| {
        s.citizens = citizens.clone();
        if let (Some(step), Some(n)) = (s.steps.first_mut(), &first) {
            step.narration = n.clone();
        }
    });
    let _ = ready.send(());
    let mut i = 0;
    while i < scenario.steps.len() {
        let Some(command) = commands.recv().await else { return };
        let (done, all) = match command {
            PlayCommand::Step(done) => (done, false),
            PlayCommand::Rest(done) => (done, true),
        };
        loop {
            let step = &scenario.steps[i];
            let line = narration(&runner, step);
            set(&|s| {
                s.steps[i].narration = line.clone();
                s.steps[i].state = StepState::Running;
            });
            let result = actions::run(&mut runner, step).await;
            i += 1;
            let next = scenario.steps.get(i).map(|s| narration(&runner, s));
            set(&|s| {
                let ran = &mut s.steps[i - 1];
                match &result {
                    Ok(()) => ran.state = StepState::Passed,
                    Err(e) => {
                        ran.state = StepState::Failed;
                        ran.message = Some(e.to_string());
                    }
                }
                s.next = i;
                if let (Some(step), Some(n)) = (s.steps.get_mut(i), &next) {
                    step.narration = n.clone();
                }
            });
            if !all || i == scenario.steps.len() {
                break;
            }
        }
        let _ = done.send(());
    }
}
