//! Injected faults: a FIFO of pushed faults, then (optionally) seeded random ones.

use super::rng::SplitMix64;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with a Lever-style error body, without doing the work.
    Status(u16),
    /// Wait, then do the work and answer normally.
    Delay(Duration),
    /// Close the connection without any response and without doing the work.
    Drop,
    /// Do the work, then wait before answering (a client that times out first lost the answer,
    /// not the write).
    DelayAfterApply(Duration),
    /// Do the work, then close the connection without a response.
    DropAfterApply,
}

impl Fault {
    /// How the request log names the fault.
    pub fn label(&self) -> String {
        match self {
            Fault::Status(s) => format!("status:{s}"),
            Fault::Delay(d) => format!("delay:{}ms", d.as_millis()),
            Fault::Drop => "drop".into(),
            Fault::DelayAfterApply(d) => format!("delay_after_apply:{}ms", d.as_millis()),
            Fault::DropAfterApply => "drop_after_apply".into(),
        }
    }
}

#[derive(Default)]
pub(crate) struct FaultPlan {
    queue: VecDeque<(Fault, u32)>,
    random: Option<RandomFaults>,
    /// Faults for one route: (method, path, requests to let through first, fault).
    targeted: Vec<(String, String, u32, Fault)>,
}

struct RandomFaults {
    ratio: f64,
    faults: Vec<Fault>,
    rng: SplitMix64,
}

impl FaultPlan {
    pub fn push(&mut self, fault: Fault, count: u32) {
        if count > 0 {
            self.queue.push_back((fault, count));
        }
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.targeted.clear();
    }

    pub fn push_on(&mut self, method: &str, path: &str, skip: u32, fault: Fault) {
        self.targeted
            .push((method.to_string(), path.to_string(), skip, fault));
    }

    /// The targeted fault for this request, if its route has one due.
    pub fn next_on(&mut self, method: &str, path: &str) -> Option<Fault> {
        let at = self
            .targeted
            .iter()
            .position(|(m, p, _, _)| m == method && p == path)?;
        if self.targeted[at].2 > 0 {
            self.targeted[at].2 -= 1;
            return None;
        }
        Some(self.targeted.remove(at).3)
    }

    pub fn set_random(&mut self, ratio: f64, faults: Vec<Fault>, seed: u64) {
        self.random = (ratio > 0.0).then(|| RandomFaults {
            ratio: ratio.min(1.0),
            faults: if faults.is_empty() {
                vec![Fault::Status(503)]
            } else {
                faults
            },
            rng: SplitMix64::new(seed),
        });
    }

    /// The fault for the next request, if any. The random draw happens on every request, so pushed
    /// faults do not shift the seeded sequence; a pushed fault wins over a random one.
    pub fn next(&mut self) -> Option<Fault> {
        let random = self.random.as_mut().and_then(|r| {
            let hit = r.rng.next_f64() < r.ratio;
            let choice = r.rng.pick(&r.faults).clone();
            hit.then_some(choice)
        });
        if let Some((fault, left)) = self.queue.front_mut() {
            let fault = fault.clone();
            *left -= 1;
            if *left == 0 {
                self.queue.pop_front();
            }
            return Some(fault);
        }
        random
    }
}
