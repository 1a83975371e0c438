"""Tables, metrics, plots and the qualitative figure of the evaluation, from the saved predictions alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from talking_points.pipeline.evaluation.config import EvalRowConfig, TextSource
from talking_points.pipeline.metrics.bootstrap import PairedDifference, paired_difference
from talking_points.pipeline.metrics.pck import pck_curve, pck_table
from talking_points.pipeline.synthesis.parse import normalise_name, parse_description

__all__ = [
    "GROUP_TITLES",
    "summary_table",
    "text_stats",
    "findings",
    "md_table",
    "metrics_dict",
    "breakdown",
    "results_markdown",
    "plot_pck_curves",
    "plot_training_curves",
    "curve_panels",
    "qualitative_figure",
    "style_table",
    "plot_style_robustness",
]

GROUP_TITLES = {
    "main": "Descriptions scored by the Point Localizer (paper Table 1 layout)",
    "gaussian": "Ablation: Gaussian attention mask in the descriptor (paper Table 3 layout)",
    "adaptation": "Ablation: LM adaptation in the localizer, GT descriptions (paper Table 4 layout)",
    "chance": "Chance",
    "styles": "Style robustness (beyond the paper): the GT facts in other styles",
}


def summary_table(preds: dict[str, pd.DataFrame], rows: dict[str, EvalRowConfig]) -> pd.DataFrame:
    """One line per row: label, group, PCK@0.1, PCK@0.2, mPCK (in %) and n, in the params' row order."""
    lines = []
    for name, cfg in rows.items():
        if name not in preds:
            continue
        t = pck_table(preds[name]).iloc[0]
        lines.append({"row": name, "Method": cfg.label, "groups": list(cfg.groups), "PCK@0.1": t["PCK@0.1"],
                      "PCK@0.2": t["PCK@0.2"], "mPCK": t["mPCK"], "n": int(t["n"])})
    return pd.DataFrame(lines)


def text_stats(df: pd.DataFrame) -> dict[str, float]:
    """Form and grounding of the texts: mean words, the fraction with all four coarse-to-fine levels, the
    fraction naming the point's object category and its part (read back by the description parser), and the
    PCK@0.1 of the points whose text names both right vs the others (is the localizer using the names?)."""
    texts = df["text"].astype(str)
    facts = [parse_description(t, category=c, part=p) for t, c, p in zip(texts, df["category"], df["part"])]
    four = np.array([all(f.levels().values()) for f in facts])
    category = np.array([f.category == normalise_name(c) for f, c in zip(facts, df["category"])])
    part = np.array([f.part == normalise_name(p) for f, p in zip(facts, df["part"])])
    both = category & part
    near = df["dist"].to_numpy() < 0.1

    def rate(mask: np.ndarray) -> float:
        return float(near[mask].mean()) if mask.any() else float("nan")

    return {"words_mean": float(texts.str.split().str.len().mean()), "four_levels": float(four.mean()),
            "category_named": float(category.mean()), "part_named": float(part.mean()),
            "pck@0.1_names_right": rate(both), "pck@0.1_names_wrong": rate(~both)}


def differences(preds: dict[str, pd.DataFrame], comparisons: list[tuple[str, str]], confidence: float = 0.95,
                resamples: int = 2000, seed: int = 0) -> dict[tuple[str, str], PairedDifference]:
    """(a, b) -> mPCK(a) - mPCK(b) with its paired bootstrap interval, for each comparison whose rows were
    scored (`metrics.bootstrap`)."""
    return {(a, b): paired_difference(preds[a], preds[b], confidence, resamples, seed)
            for a, b in comparisons if a in preds and b in preds}


def difference_table(diffs: dict[tuple[str, str], PairedDifference], rows: dict[str, EvalRowConfig]
                     ) -> pd.DataFrame:
    """One line per comparison: the two rows, the difference, its interval, whether the interval leaves out 0."""
    return pd.DataFrame([{"a": rows[a].label, "b": rows[b].label, "a - b": f"{d.diff:+.2f}",
                          f"{d.confidence:.0%} CI": f"{d.low:+.2f} to {d.high:+.2f}",
                          "beyond noise": "yes" if d.clear else "no", "n": d.n}
                         for (a, b), d in diffs.items()])


def findings(summary: pd.DataFrame, diffs: dict[tuple[str, str], PairedDifference] | None = None) -> list[dict]:
    """The paper's expected findings, each checked against the measured numbers (rows missing: skipped); a
    finding about two rows that `diffs` compares also gives the difference's bootstrap interval."""
    m = dict(zip(summary["row"], summary["mPCK"]))
    checks = []
    diffs = diffs or {}

    def check(name: str, needed: list[str], ok: bool | None, detail: str) -> None:
        if all(r in m for r in needed):
            for (a, b), d in diffs.items():
                if len(needed) == 2 and {a, b} == set(needed):
                    detail += f"; {a} - {b} {d.text()}"
            checks.append({"finding": name, "holds": bool(ok), "numbers": detail})

    g = lambda r: m.get(r, float("nan"))  # noqa: E731
    check("TP within 3 mPCK points of GT description", ["tp", "gt"], g("gt") - g("tp") <= 3,
          f"TP {g('tp'):.1f} vs GT {g('gt'):.1f}")
    for base in ("template", "object_level"):
        check(f"{base} baseline at least 15 points below TP", ["tp", base], g("tp") - g(base) >= 15,
              f"TP {g('tp'):.1f} vs {base} {g(base):.1f}")
    check("w/o Gaussian mask (object mask) below TP", ["tp", "object_mask"], g("object_mask") < g("tp"),
          f"TP {g('tp'):.1f} vs object mask {g('object_mask'):.1f}")
    check("w/o any attention mask below TP", ["tp", "no_gaussian"], g("no_gaussian") < g("tp"),
          f"TP {g('tp'):.1f} vs no mask {g('no_gaussian'):.1f}")
    check("w/o LLM adaptation below the adapted localizer", ["gt", "frozen_lm"], g("frozen_lm") < g("gt"),
          f"adapted {g('gt'):.1f} vs frozen {g('frozen_lm'):.1f}")
    held = [r for r in ("ms_terse", "ms_paraphrase") if r in m]
    if held and "ms_gt" in m:
        worst = min(held, key=g)
        check("style-robust localizer: held-out style within 5 points of its in-style mPCK", ["ms_gt", worst],
              g("ms_gt") - g(worst) <= 5, f"in-style {g('ms_gt'):.1f} vs {worst} {g(worst):.1f}")
    check("style-robust localizer: in-style no more than 2 points below the default localizer", ["ms_gt", "gt"],
          g("gt") - g("ms_gt") <= 2, f"default {g('gt'):.1f} vs robust {g('ms_gt'):.1f}")
    check("style-robust localizer does not score TP lower", ["ms_tp", "tp"], g("ms_tp") >= g("tp"),
          f"default {g('tp'):.1f} vs robust {g('ms_tp'):.1f}")
    chance = max((g(r) for r in ("centre", "uniform") if r in m), default=None)
    if chance is not None and "tp" in m:
        check("TP far above chance (by 20+ points)", ["tp"], g("tp") - chance >= 20,
              f"TP {g('tp'):.1f} vs best chance {chance:.1f}")
    return checks


def style_table(summary: pd.DataFrame, rows: dict[str, EvalRowConfig], held_out: list[str],
                reference: str = "gt") -> pd.DataFrame:
    """mPCK per description style (rows) and localizer (columns) from the `styles` rows and the reference GT
    row: the training style (gt), the other styles (held out of every localizer's training where `held_out`
    says so) and TP's own texts. Empty when there are no style rows."""
    lines = []
    in_styles = [rows[r] for r in summary["row"] if "styles" in rows[r].groups]
    describers = {c.describer for c in in_styles if c.texts is TextSource.generated}
    for line in summary.to_dict("records"):
        cfg = rows[line["row"]]
        same_texts = cfg.texts is TextSource.generated and cfg.describer in describers  # TP read by each localizer
        if "styles" not in cfg.groups and line["row"] != reference and not same_texts:
            continue
        if cfg.texts is TextSource.style:
            style = cfg.style.value + (" (held out)" if cfg.style.value in held_out else "")
        elif cfg.texts is TextSource.gt:
            style = "gt (training style)"
        elif cfg.texts is TextSource.generated:
            style = f"TP texts ({cfg.describer})"
        else:
            continue
        lines.append({"style": style, "localizer": Path(cfg.localizer).name, "mPCK": line["mPCK"]})
    if len(lines) < 2:
        return pd.DataFrame()
    table = pd.DataFrame(lines).pivot_table(index="style", columns="localizer", values="mPCK", sort=False)
    return table.reset_index()


def plot_style_robustness(table: pd.DataFrame, path: Path, title: str = "") -> None:
    """Grouped bars: mPCK of each localizer on each description style (`style_table`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    localizers = [c for c in table.columns if c != "style"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(table))
    width = 0.8 / max(len(localizers), 1)
    for k, name in enumerate(localizers):
        bars = ax.bar(x + (k - (len(localizers) - 1) / 2) * width, table[name], width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, [textwrap.fill(s, 14) for s in table["style"]], fontsize=8)
    ax.set(ylabel="mPCK (%)", ylim=(0, 100), title=f"mPCK per description style{' · ' + title if title else ''}")
    ax.legend(fontsize=8, title="localizer", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def breakdown(df: pd.DataFrame, by: str) -> pd.DataFrame:
    return pck_table(df, by=[by])


#: the text statistics that are DVC metrics (the others are in results.md): is the point's object / part named
METRIC_TEXT_STATS = ("category_named", "part_named")


def metrics_dict(preds: dict[str, pd.DataFrame], rows: dict[str, EvalRowConfig],
                 diffs: dict[tuple[str, str], PairedDifference] | None = None) -> dict:
    """DVC metrics, compact enough for `dvc metrics show`: per row PCK@0.1, PCK@0.2, mPCK (%), n, and for rows
    with texts the rates at which they name the right object and part (the rest is in results.md); with
    `diffs`, each comparison's difference and interval under `differences` ("<a>_minus_<b>")."""
    out: dict = {}
    summary = summary_table(preds, rows)
    for line in summary.to_dict("records"):
        entry = {"pck@0.1": round(line["PCK@0.1"], 2), "pck@0.2": round(line["PCK@0.2"], 2),
                 "mpck": round(line["mPCK"], 2), "n": line["n"]}
        if rows[line["row"]].texts is not TextSource.none:
            # a rate with no points to take it over is NaN in the tables but null here: strict JSON, and
            # `dvc metrics diff` would show NaN -> NaN as a change
            stats = text_stats(preds[line["row"]])
            entry.update({k: round(stats[k], 4) if np.isfinite(stats[k]) else None for k in METRIC_TEXT_STATS})
        out[line["row"]] = entry
    result: dict = {"evaluation": out}
    if diffs:
        result["differences"] = {f"{a}_minus_{b}": d.as_metrics() for (a, b), d in diffs.items()}
    return result


def md_table(df: pd.DataFrame, cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n"
    body = ""
    for rec in df[cols].to_dict("records"):
        body += "| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in rec.values()) + " |\n"
    return head + body


def profile_line(profile: str, note: str, n_points: int) -> str:
    """'<profile> profile, <n> test points' (+ the profile's note): stated on results.md and every figure."""
    return f"{profile} profile, {n_points:,} test points" + (f". {note}" if note else "")


def results_markdown(preds: dict[str, pd.DataFrame], rows: dict[str, EvalRowConfig],
                     breakdown_rows: list[str], examples: list[dict] | None = None,
                     extra_sections: list[str] | None = None, profile: str = "",
                     held_out: list[str] | None = None,
                     diffs: dict[tuple[str, str], PairedDifference] | None = None) -> str:
    """reports/results.md: the tables laid out like the paper's, the style-robustness table, the findings check,
    breakdowns, examples. `profile`: the `profile_line` stated under the title; `held_out`: the styles no
    localizer trained on (styles.held_out); `diffs`: the comparisons' bootstrap intervals (`differences`)."""
    held_out = held_out or []
    summary = summary_table(preds, rows)
    parts = ["# Results\n", *([f"**{profile}**\n"] if profile else []), "PCK@t: distance between predicted and true point, with x divided by the image width and "
             "y by the height, below t. mPCK = mean of PCK@0.1 and PCK@0.2. All numbers in %, on the test split; "
             "every row is scored by the same trained Point Localizer unless the row says otherwise.\n"]
    for group, title in GROUP_TITLES.items():
        sub = summary[summary["groups"].map(lambda gs: group in gs)]
        if len(sub):
            parts.append(f"## {title}\n\n" + md_table(sub, ["Method", "PCK@0.1", "PCK@0.2", "mPCK", "n"]))
    styles = style_table(summary, rows, held_out)
    if len(styles):
        parts.append("## mPCK per description style and localizer\n\n"
                     "The GT facts rewritten in other styles (`tp restyle`; the parser reads every fact back), read "
                     "by the default localizer (trained on the gt style only) and by the style-robust one (trained "
                     "on a mix; no localizer trains on a held-out style). Plot: `plots/style_robustness.png`.\n\n"
                     + md_table(styles, list(styles.columns)))
    checks = findings(summary, diffs)
    if checks:
        parts.append("## The paper's findings on our data\n\n" + md_table(
            pd.DataFrame(checks).assign(holds=lambda d: d["holds"].map({True: "yes", False: "**no**"})),
            ["finding", "holds", "numbers"]))
    if diffs:
        table = difference_table(diffs, rows)
        parts.append("## Differences between rows, with their noise\n\n"
                     "mPCK(a) - mPCK(b) over the test points both rows scored, with a paired bootstrap interval "
                     "(resampling the points; `metrics/bootstrap.py`, `evaluate.report.comparisons`). A "
                     "difference whose interval holds 0 is within what another draw of the same number of test "
                     "points could give.\n\n" + md_table(table, list(table.columns)))
    text_rows = [n for n in preds if rows[n].texts is not TextSource.none]
    if text_rows:
        stats = pd.DataFrame([{"Method": rows[n].label, **text_stats(preds[n])} for n in text_rows])
        names = {"words_mean": "mean words", "four_levels": "% four levels", "category_named": "% right object",
                 "part_named": "% right part", "pck@0.1_names_right": "PCK@0.1, both right",
                 "pck@0.1_names_wrong": "PCK@0.1, not both"}
        for col in list(names)[1:]:
            stats[col] *= 100
        parts.append("## Texts\n\nForm and grounding, read back by the description parser: mean words, the % of "
                     "texts with all four levels (object, part, point, local look), the % naming the point's "
                     "object category and its part, and PCK@0.1 of the points whose text names both right vs "
                     "the rest (nan: no such point).\n\n"
                     + md_table(stats.rename(columns=names), ["Method", *names.values()]))
    for name in breakdown_rows:
        if name not in preds:
            continue
        for by in ("source", "category", "part"):
            t = breakdown(preds[name], by)
            parts.append(f"## {rows[name].label}, per {by}\n\n" + md_table(t, [by, "PCK@0.1", "PCK@0.2", "mPCK", "n"]))
    if examples:
        lines = ["## Examples\n"]
        for ex in examples:
            lines.append(f"**{ex['kp_id']}** ({ex['category']}, {ex['part']})\n")
            for label, text, d in ex["texts"]:
                lines.append(f"- *{label}* (error {d:.3f}): {text}")
            lines.append("")
        parts.append("\n".join(lines))
    parts.extend(extra_sections or [])
    return "\n".join(parts) + "\n"


def plot_pck_curves(preds: dict[str, pd.DataFrame], rows: dict[str, EvalRowConfig], path: Path,
                    title: str = "") -> list[str]:
    """PCK@t curves of the rows (the style rows excepted: `plot_style_robustness`); returns the rows drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    # the style rows have their own plot (plot_style_robustness); the paper's rows stay readable here
    shown = [n for n in preds if set(rows[n].groups) != {"styles"}]
    colours = plt.get_cmap("tab20" if len(shown) > 10 else "tab10").colors
    for k, name in enumerate(shown):
        curve = pck_curve(preds[name]["dist"].to_numpy())
        style = ":" if "chance" in rows[name].groups else "-"
        ax.plot(curve["threshold"], 100 * curve["pck"], style, label=rows[name].label,
                color=colours[k % len(colours)])
    for t in (0.1, 0.2):
        ax.axvline(t, color="grey", lw=0.5)
    ax.set(xlabel="threshold t (image-normalised)", ylabel="PCK@t (%)", xlim=(0, 0.3), ylim=(0, 100),
           title=f"PCK curves on the test split{' · ' + title if title else ''}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
    return shown


#: what a run's `loss` is, by the kind of training (panels never mix two kinds of loss)
LOSS_KINDS = {"descriptor": "LM cross-entropy (nats / token)", "base_lm": "LM cross-entropy (nats / token)",
              "localizer": "point loss", "vision": "dense cross-entropy (category + part)",
              "grpo": "GRPO loss (policy + KL)"}
#: axis labels of the other logged metrics
METRIC_LABELS = {"mean_dist": "mean distance (image-normalised)", "pck@0.1": "PCK@0.1 (train batches)",
                 "reward_mean": "reward (-MSE), mean", "reward_std": "reward, std", "kl": "KL to SFT descriptor",
                 "reward_group_std": "reward std within a group", "length_words": "words per description",
                 "length_tokens": "tokens per description", "policy_loss": "policy loss",
                 "grad_norm": "gradient norm", "category_loss": "category cross-entropy",
                 "part_loss": "part cross-entropy", "category_pixel_acc": "category pixel accuracy",
                 "part_pixel_acc": "part pixel accuracy"}


def curve_panels(live_dirs: dict[str, Path], kinds: dict[str, str] | None = None
                 ) -> dict[tuple[str, str], dict[str, pd.DataFrame]]:
    """(metric, kind of loss or '') -> run -> its dvclive curve: the panels of `plot_training_curves`."""
    kinds = kinds or {}
    curves: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for run, d in live_dirs.items():
        kind = kinds.get(run, run if run in LOSS_KINDS else "descriptor")
        if kind not in LOSS_KINDS:
            raise ValueError(f"unknown kind of training {kind!r} for run {run!r}; known: {sorted(LOSS_KINDS)}")
        for f in sorted((Path(d) / "plots" / "metrics").glob("*.tsv")):
            if f.stem in ("lr", "finished"):
                continue
            key = (f.stem, LOSS_KINDS[kind] if f.stem == "loss" else "")
            curves.setdefault(key, {})[run] = pd.read_csv(f, sep="\t")
    return curves


def plot_training_curves(live_dirs: dict[str, Path], path: Path, kinds: dict[str, str] | None = None,
                         log_loss: bool = True, title: str = "") -> list[str]:
    """One panel per logged metric and kind of training (the LM cross-entropy of the descriptors, the point loss
    of the localizers, the tower's dense loss: never two kinds of loss on one axis), a line per run, labelled
    y axes, integer step ticks. `kinds`: run -> a LOSS_KINDS key (default: the run's name if it is one, else
    'descriptor'). Returns the runs that had curves. `log_loss`: loss on a log axis (not for GRPO, whose loss can
    be negative)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    curves = curve_panels(live_dirs, kinds)
    if not curves:
        return []
    order = sorted(curves, key=lambda k: (k[0] != "loss", k[0], k[1]))
    cols = min(4, len(order))
    rows = -(-len(order) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.5 * rows + (0.4 if title else 0)), squeeze=False)
    for ax in axes.flat[len(order):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, order):
        metric, loss_kind = key
        for run, df in curves[key].items():
            ax.plot(df["step"], df[metric], label=run)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(loss_kind or METRIC_LABELS.get(metric, metric))
        ax.set_title(f"loss: {loss_kind}" if loss_kind else metric, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric == "loss" and log_loss:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return sorted({r for runs in curves.values() for r in runs})


_COLOURS = ["tab:red", "tab:blue", "tab:orange", "tab:purple", "tab:brown"]
_MARKERS = ["X", "P", "D", "s", "^"]


def _spread(points: list[tuple[float, float]], radius: float) -> list[tuple[float, float]]:
    """The points, each one that lands within `radius` of an earlier one moved out on a small circle around
    it, so that no marker hides another (the true place is still marked by a thin line)."""
    out: list[tuple[float, float]] = []
    for k, (x, y) in enumerate(points):
        near = sum((x - px) ** 2 + (y - py) ** 2 < radius ** 2 for px, py in out)
        if near:
            angle = 2 * np.pi * (k % 6) / 6 + np.pi / 6
            x, y = x + 1.2 * radius * np.cos(angle), y + 1.2 * radius * np.sin(angle)
        out.append((x, y))
    return out


def qualitative_figure(preds: dict[str, pd.DataFrame], rows: dict[str, EvalRowConfig], names: list[str],
                       n: int, seed: int, path: Path, title: str = "") -> list[dict]:
    """A grid of test images: the true point (green ring) and each named row's prediction (outlined markers,
    moved apart where they overlap), every text in full beneath (like the paper's Figure 5). Returns the
    examples drawn (for the markdown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt

    from talking_points.pipeline.data.images import read_rgb

    names = [r for r in names if r in preds]
    if not names or n == 0:
        return []
    by_kp = {r: preds[r].set_index("kp_id") for r in names}  # each row's predictions, indexed once
    base = by_kp[names[0]]
    common = sorted(set.intersection(*(set(preds[r]["kp_id"]) for r in names)))
    pick = list(np.random.default_rng(seed).permutation(common)[:n])
    cols = min(4, len(pick))
    nrows = int(np.ceil(len(pick) / cols))
    wrap = 58
    captions, examples = [], []
    for kp in pick:
        lines = []
        for r in names:
            p = by_kp[r].loc[kp]
            lines.append(textwrap.fill(f"{rows[r].label} (error {float(p['dist']):.2f}): {p['text']}", wrap))
        captions.append("\n".join(lines))
    text_lines = max(c.count("\n") + 1 for c in captions)
    text_h = 0.16 * text_lines + 0.3  # inches at 7 pt
    fig = plt.figure(figsize=(4.6 * cols, nrows * (3.6 + text_h) + (0.5 if title else 0.2)))
    grid = fig.add_gridspec(nrows * 2, cols, height_ratios=[3.6, text_h] * nrows, hspace=0.08, wspace=0.05)
    outline = [pe.withStroke(linewidth=3.5, foreground="black")]
    for i, (kp, caption) in enumerate(zip(pick, captions)):
        r_i, c_i = divmod(i, cols)
        ax = fig.add_subplot(grid[2 * r_i, c_i])
        s = base.loc[kp]
        img = read_rgb(s["file"])  # as stored, like the points
        h, w = img.shape[:2]
        ax.imshow(img)
        true = (s["x_norm"] * w, s["y_norm"] * h)
        ax.plot(*true, "o", ms=11, mfc="none", mec="lime", mew=2.5, label="true point", path_effects=outline)
        raw = [(by_kp[r].loc[kp]["x_pred"] * w, by_kp[r].loc[kp]["y_pred"] * h) for r in names]
        shown = _spread([true, *raw], radius=0.035 * w)[1:]
        texts = []
        for colour, marker, r, (x0, y0), (x, y) in zip(_COLOURS, _MARKERS, names, raw, shown):
            p = by_kp[r].loc[kp]
            if (x, y) != (x0, y0):
                ax.plot([x0, x], [y0, y], "-", color=colour, lw=1)
            ax.plot(x, y, marker, ms=8, mew=1, mfc=colour, mec="white", label=rows[r].label)
            texts.append((rows[r].label, str(p["text"]), float(p["dist"])))
        ax.set_title(f"{s['category']} / {s['part']}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.legend(fontsize=6.5, loc="upper right", framealpha=0.85)
        tax = fig.add_subplot(grid[2 * r_i + 1, c_i])
        tax.axis("off")
        tax.text(0, 1, caption, va="top", ha="left", fontsize=7, transform=tax.transAxes)
        examples.append({"kp_id": kp, "category": s["category"], "part": s["part"], "texts": texts})
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100, format="png", bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return examples
