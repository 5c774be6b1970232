//! Merging job results into per-tensor statistics, in element order, whatever order the
//! jobs finish in. A tensor is finished (and its row sums freed) as soon as its last job
//! has merged.

use std::collections::BTreeMap;

use super::{ScanJob, ScanPlan, ScanResult, TensorScan};
use crate::encoding::{DecodeError, Encoding};
use crate::model::Model;
use crate::stats::{PartialStats, TensorStats};

#[derive(Default)]
struct Slot {
    jobs: usize,
    /// Jobs merged into `acc` so far.
    next: usize,
    acc: Option<PartialStats>,
    pending: BTreeMap<usize, PartialStats>,
    error: Option<String>,
    done: Option<TensorStats>,
}

pub struct Collector<'m> {
    model: &'m Model,
    slots: Vec<Slot>,
    finished: usize,
}

impl<'m> Collector<'m> {
    pub fn new(model: &'m Model, plan: &ScanPlan) -> Self {
        let mut c = Collector {
            model,
            slots: Vec::new(),
            finished: 0,
        };
        c.slots = (0..model.tensors.len())
            .map(|i| Slot {
                jobs: plan.jobs_per_tensor.get(i).copied().unwrap_or(0),
                ..Default::default()
            })
            .collect();
        for (i, e) in &plan.errors {
            if let Some(s) = c.slots.get_mut(*i) {
                s.error = Some(e.clone());
            }
        }
        for i in 0..c.slots.len() {
            let s = &c.slots[i];
            if s.jobs == 0 && s.error.is_none() {
                // An empty tensor: statistics of nothing.
                let t = &model.tensors[i];
                c.slots[i].done =
                    Some(PartialStats::empty(0, 1, false).finish(0, t.row_len(), None, 0));
            }
        }
        c.finished = c
            .slots
            .iter()
            .filter(|s| s.done.is_some() || s.error.is_some())
            .count();
        c
    }

    /// Tensors finished (with statistics or an error).
    pub fn finished(&self) -> usize {
        self.finished
    }

    /// Take the result of one job.
    pub fn add(&mut self, job: &ScanJob, result: Result<PartialStats, DecodeError>) {
        let Some(slot) = self.slots.get_mut(job.tensor) else {
            return;
        };
        if slot.error.is_some() || slot.done.is_some() {
            return;
        }
        let p = match result {
            Ok(p) => p,
            Err(e) => {
                slot.error = Some(e.to_string());
                slot.acc = None;
                slot.pending.clear();
                self.finished += 1;
                return;
            }
        };
        slot.pending.insert(job.ordinal, p);
        while let Some(p) = slot.pending.remove(&slot.next) {
            match &mut slot.acc {
                None => slot.acc = Some(p),
                Some(a) => {
                    if let Err(e) = a.merge(p) {
                        slot.error = Some(e);
                        slot.acc = None;
                        slot.pending.clear();
                        self.finished += 1;
                        return;
                    }
                }
            }
            slot.next += 1;
        }
        if slot.next == slot.jobs {
            let t = &self.model.tensors[job.tensor];
            let ggml_type = match t.encoding {
                Encoding::Ggml { ggml_type } => Some(ggml_type),
                _ => None,
            };
            if let Some(acc) = slot.acc.take() {
                slot.done =
                    Some(acc.finish(t.n_elements(), t.row_len(), ggml_type, t.primary().nbytes));
            }
            self.finished += 1;
        }
    }

    pub fn finish(self) -> ScanResult {
        let tensors = self
            .slots
            .into_iter()
            .zip(&self.model.tensors)
            .map(|(s, t)| {
                let error = match (&s.done, s.error) {
                    (Some(_), _) => None,
                    (None, Some(e)) => Some(e),
                    (None, None) => Some("scan did not finish this tensor".to_string()),
                };
                TensorScan {
                    name: t.name.clone(),
                    stats: s.done,
                    error,
                }
            })
            .collect();
        ScanResult { tensors }
    }
}
