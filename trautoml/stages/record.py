"""The decision record: what one ingest decided and what it cost, built from the stages' results."""
from __future__ import annotations

from dataclasses import replace

from trautoml import decide
from trautoml.decision import Decision

__all__ = ["decision_record"]


def decision_record(dataset, features, assignment, plan: decide.Plan, out, *, run_id: str | None, preset: str,
                    grouper: str, backend: str) -> Decision:
    """The `Decision` of ``dataset`` from its ``features`` (profile stage), ``assignment`` (group), ``plan``
    (decide) and ``out`` (search/train `Outcome`). ``run_id``: its MLflow run; ``preset`` / ``grouper`` /
    ``backend``: the names the ingest ran with."""
    test = assignment.test
    trials = out.trials
    how = (plan if out.init is not None or plan.init is None else replace(plan, init=None)).describe()
    if out.note:
        how += f" ({out.note})"
    if out.check is not None:
        how += "; " + out.check.explain()
    if out.escalated:
        how += ("; " + decide.escalation(plan).describe() +
                (" — kept the searched model" if out.outcome == "searched" else " — the search did not beat "
                 "the reused model, kept it"))
    return Decision(
        dataset=dataset.name, content_hash=dataset.content_hash(), group=plan.group, outcome=out.outcome,
        reason=assignment.reason, spec=out.spec, backend=backend,
        val_accuracy=float(out.final.val_accuracy), test_accuracy=float(out.final.test_accuracy),
        profile_seconds=float(features.total_seconds), search_seconds=float(out.search_seconds),
        train_seconds=float(out.train_seconds), explanation=f"{assignment.explain()}\n→ {how}",
        F=getattr(test, "F", None), p_value=getattr(test, "p_value", None),
        log_posterior=assignment.log_posterior, runner_up_log_posterior=assignment.runner_up_log_posterior,
        run_id=run_id, uri=dataset.uri, family=dataset.family, preset=preset, grouper=grouper,
        final_epochs=out.final_epochs, profile_cached=features.cached, trials=len(trials),
        cached_trials=sum(1 for t in trials if t.cached), failed_trials=sum(1 for t in trials if t.status != "ok"),
        trial_seconds=float(sum(t.wall_seconds for t in trials)), search_own_seconds=float(out.search_own_seconds),
        founded=plan.founds_group, search=out.search_info,
        reuse_check=None if out.check is None else out.check.to_dict(),
        escalated=({"kept": out.outcome, "group_model": plan.spec.to_dict(), "reuse": out.init}
                   if out.escalated and plan.spec is not None else None),  # an escalation's plan names the model
        n_train=len(dataset.y_train), n_classes=int(dataset.num_classes), profile_flops=float(features.flops),
        search_flops=float(out.search_flops), train_flops=float(out.train_flops),
        weights=getattr(out.final, "weights", None), init_from=out.init if out.outcome == "reused" else None)
