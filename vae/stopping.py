"""Early stopping on the validation -ELBO, as the VampPrior code (Tomczak & Welling, 2018) does it, per member.

After each epoch: a validation -ELBO below the best so far makes it the best (its checkpoint is kept) and resets
the count of epochs without improvement; otherwise the count goes up, except during the KL warm-up, where it is
held at 0. Training stops once the count exceeds `patience` (their `e > early_stopping_epochs`). The state is
recomputed from metrics.jsonl on resume, so a resumed run stops exactly where an uninterrupted one does.
"""
import dataclasses

METRIC = 'validation/neg_elbo'  # The bound at beta = 1, whatever beta the epoch trained with.


@dataclasses.dataclass
class Tracker:
  patience: int  # 0: never stop (no best checkpoint either).
  warmup_epochs: int = 0
  best_epoch: int = 0
  best_value: float = float('inf')
  count: int = 0
  stopped: bool = False

  @property
  def enabled(self):
    return self.patience > 0

  def update(self, epoch, value):
    """Takes epoch `epoch`'s validation -ELBO; returns True if it is the new best."""
    if not self.enabled or self.stopped:
      return False
    improved = value < self.best_value
    if improved:
      self.best_epoch, self.best_value, self.count = epoch, value, 0
    else:
      self.count = 0 if epoch < self.warmup_epochs else self.count + 1
    self.stopped = self.count > self.patience
    return improved


def from_records(records, patience, warmup_epochs=0):
  """The Tracker after the epochs of `records` (metrics.jsonl's, in order)."""
  tracker = Tracker(patience, warmup_epochs)
  for record in records:
    if METRIC in record:
      tracker.update(record['epoch'], record[METRIC])
  return tracker
