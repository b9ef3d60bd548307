"""What `score` writes for people: `summary.json`, `summary.md` (tables) and the plots."""

from __future__ import annotations

import json
from pathlib import Path


def write_summary(summary: dict, run: Path) -> None:
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    arms = _arms(summary)
    visor_keys = ("OA", "VISOR_cond", "VISOR_uncond", "VISOR_1", "VISOR_2", "VISOR_3", "VISOR_4")
    lines = _table(
        "| arm | images | " + " | ".join(visor_keys) + " |",
        "|---" * 9 + "|",
        [
            f"| {arm} | {v['images']} | " + " | ".join(f"{v[key]:.1f}" for key in visor_keys) + " |"
            for arm in arms
            if (v := summary[arm]["visor"])
        ],
    )[1:]
    lines += _table(
        "| arm | images | objects found | all objects found | relation accuracy (95%) | all satisfied (95%) |",
        "|---|---:|---:|---:|---|---|",
        [
            f"| {arm} | {m['images']} | {_cell(m['objects_found'])} | {_cell(m['all_objects_found'])} | "
            f"{_with_interval(m, 'relation_accuracy')} | {_with_interval(m, 'all_satisfied')} |"
            for arm in arms
            for m in [summary[arm]["multi_relation"]]
        ],
    )
    lines += _table(
        "| arm | GenEval position: images | accuracy | T2I-CompBench 2D: images | score |",
        "|---|---:|---:|---:|---:|",
        [
            f"| {arm} | {g['images']} | {_cell(g['accuracy'])} | {t['images']} | {_cell(t['score'])} |"
            for arm in arms
            for g, t in [(summary[arm]["geneval"], summary[arm]["t2i_compbench"])]
        ],
    )
    lines += _table(
        "| arm | images | duplicate rate | relations on duplicates | reported satisfied | reported uncertain |",
        "|---|---:|---:|---:|---:|---:|",
        [
            f"| {arm} | {d['images']} | {_cell(d['duplicate_rate'])} | {d['relations_on_duplicates']} | "
            f"{d['satisfied_on_duplicates']} | {d['uncertain_on_duplicates']} |"
            for arm in arms
            for d in [summary[arm]["duplicates"]]
        ],
    )
    lines += _table(
        "| arm | report's verdict | detector holds: centroids alone / with the split checks | detector fails: same |",
        "|---|---|---:|---:|",
        [
            f"| {arm} | {verdict} | {v['before'][verdict]['holds']} / {v['after'][verdict]['holds']} | "
            f"{v['before'][verdict]['fails']} / {v['after'][verdict]['fails']} |"
            for arm in arms
            for v in [summary[arm]["report_against_detector"]]
            for verdict in v["before"]
        ],
    )
    if "paired_flips" in summary:
        flips = summary["paired_flips"]
        lines += [
            "",
            f"Guided against unguided, same seeds: {flips['fixed']} relations fixed, {flips['broken']} broken; "
            f"duplicated objects created in {summary['paired_duplicates']['created']} images, "
            f"removed in {summary['paired_duplicates']['removed']}.",
        ]
    lines += _kind_tables(summary)
    (run / "summary.md").write_text("\n".join(lines) + "\n")
    plot_summary(summary, run / "summary.png")


def _kind_tables(summary: dict) -> list[str]:
    if "by_kind" not in summary:
        return []

    lines = _table(
        "| kind | arm | images | refused | object accuracy (95%) | largest consistent share (95%) "
        "| all satisfied (95%) | s/image |",
        "|---|---|---:|---:|---|---|---|---:|",
        [
            f"| {e['kind']} | {e['arm']} | {e['images']} | {e['refused']} | "
            + " | ".join(
                _with_interval(e, name) for name in ("object_accuracy", "max_consistent_share", "all_satisfied")
            )
            + f" | {_cell(e['seconds_per_image'])} |"
            for e in summary["by_kind"]
        ],
    )
    lines += _table(
        "| kind | arms | images | difference (95%) | established |",
        "|---|---|---:|---|---|",
        [
            f"| {d['kind']} | {d['arms']} | {d['images']} | {d['difference']:+.3f} "
            f"({d['difference_95'][0]:+.3f} to {d['difference_95'][1]:+.3f}) | {'yes' if d['established'] else 'no'} |"
            for d in summary["arm_differences"]
        ],
    )
    return lines


def _table(header: str, alignment: str, rows: list[str]) -> list[str]:
    """A markdown table after a blank line."""
    return ["", header, alignment, *rows]


def _with_interval(entry: dict, name: str) -> str:
    low, high = entry[f"{name}_95"]
    return f"{_cell(entry[name])} ({_cell(low)}-{_cell(high)})"


def plot_summary(summary: dict, path: Path) -> None:
    """Bars per arm: relation accuracy by predicate, and overall with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = _arms(summary)
    predicates = sorted({p for arm in arms for p in summary[arm]["multi_relation"]["relation_accuracy_by_predicate"]})
    groups = [*predicates, "all"]
    figure, axis = plt.subplots(figsize=(max(5, 1.2 * len(groups) * len(arms) / 2 + 2), 3.5))
    width = 0.8 / max(len(arms), 1)
    for a, arm in enumerate(arms):
        scores = summary[arm]["multi_relation"]
        values = [scores["relation_accuracy_by_predicate"].get(p, float("nan")) for p in predicates]
        values.append(scores["relation_accuracy"] if scores["relation_accuracy"] is not None else float("nan"))
        low, high = scores["relation_accuracy_95"]
        errors = [
            [0.0] * len(predicates) + [max(values[-1] - low, 0.0)],
            [0.0] * len(predicates) + [max(high - values[-1], 0.0)],
        ]
        axis.bar([g + a * width for g in range(len(groups))], values, width, yerr=errors, capsize=3, label=arm)
    axis.set_xticks([g + width * (len(arms) - 1) / 2 for g in range(len(groups))], groups)
    _save(figure, axis, path, "relation accuracy (found pairs)", top=1.0)
    if "by_kind" in summary:
        plot_kinds(summary["by_kind"], path.with_name("summary_kinds.png"))


def plot_kinds(table: list[dict], path: Path) -> None:
    """Bars per kind and arm: the share of the largest consistent subset satisfied, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({e["kind"] for e in table})
    arms = sorted({e["arm"] for e in table})
    figure, axis = plt.subplots(figsize=(max(6, 0.8 * len(kinds) * len(arms) / 2 + 2), 3.5))
    width = 0.8 / max(len(arms), 1)
    for a, arm in enumerate(arms):
        cells = [next((e for e in table if e["kind"] == kind and e["arm"] == arm), None) for kind in kinds]
        values = [c["max_consistent_share"] if c and c["max_consistent_share"] is not None else 0.0 for c in cells]
        low = [
            v - (c["max_consistent_share_95"][0] if c and c["max_consistent_share"] is not None else v)
            for v, c in zip(values, cells, strict=True)
        ]
        high = [
            (c["max_consistent_share_95"][1] if c and c["max_consistent_share"] is not None else v) - v
            for v, c in zip(values, cells, strict=True)
        ]
        positions = [k + a * width for k in range(len(kinds))]
        axis.bar(positions, values, width, yerr=[low, high], capsize=3, label=arm)
    axis.set_xticks([k + width * (len(arms) - 1) / 2 for k in range(len(kinds))], kinds)
    _save(figure, axis, path, "share of the largest consistent subset satisfied", top=1.05)


def _save(figure, axis, path: Path, label: str, top: float) -> None:
    import matplotlib.pyplot as plt

    axis.set_ylabel(label)
    axis.set_ylim(0, top)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _arms(summary: dict) -> list[str]:
    return [arm for arm in summary if arm not in ("paired_flips", "paired_duplicates", "by_kind", "arm_differences")]


def _cell(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"
