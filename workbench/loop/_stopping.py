"""When to stop asking for labels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoppingCriteria:
    """Stop when any criterion holds. ``None`` switches a criterion off.

    * ``label_budget``: this many human labels exist.
    * ``plateau_rounds``: the validation metric has not improved by ``min_improvement`` over the
      last ``plateau_rounds`` model versions.
    * ``min_mean_uncertainty``: the pool's mean score (entropy, nats) fell below this.
    """

    label_budget: int | None = None
    plateau_rounds: int | None = 3
    min_improvement: float = 0.002
    min_mean_uncertainty: float | None = None

    def reason_to_stop(
        self, *, labels: int, val_history: list[float], mean_uncertainty: float | None
    ) -> str | None:
        """Why the loop should stop now, or None to go on."""
        if self.label_budget is not None and labels >= self.label_budget:
            return f"label budget reached ({labels} >= {self.label_budget})"
        window = self.plateau_rounds
        if window is not None and len(val_history) > window:
            best_before = max(val_history[:-window])
            if max(val_history[-window:]) < best_before + self.min_improvement:
                return f"validation metric plateaued for {window} rounds (best {best_before:.4f})"
        if (
            self.min_mean_uncertainty is not None
            and mean_uncertainty is not None
            and mean_uncertainty < self.min_mean_uncertainty
        ):
            return (
                f"mean pool uncertainty {mean_uncertainty:.4f} is below {self.min_mean_uncertainty}"
            )
        return None
