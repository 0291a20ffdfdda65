"""Plain-text tables of the experiments' per-layer summaries, as the commands print them."""

from __future__ import annotations

from .weights import SIGN_CONVENTION


def _f(value, digits: int = 3) -> str:
    return "nan" if value is None else f"{value:.{digits}f}"


def optimality_table(layers: list[dict]) -> str:
    """One line per (tau, layer): losses, mean difference with its 99% CI, share of random sets beating core."""
    head = (f"{'tau':>4} {'layer<-lower':<22}{'targets':>8}{'cases':>7}{'L(core)':>9}{'L(random)':>10}"
            f"{'diff':>8}  {'99% CI (cases)':<17}{'99% CI (targets)':<18}{'random<core':>12}{'by':>7}{'ties':>6}")
    lines = ["optimality: L(S, a) = |V_a^knockout(S) ∩ V_a| / |V_a| (lower = S matters more); "
             "diff = L(random) - L(core)", head]
    for r in layers:
        lines.append(
            f"{r['tau']:>4} {r['layer'] + '<-' + r['lower']:<22}{r['n_targets']:>8}{r['n_cases']:>7}"
            f"{_f(r['core_loss']):>9}{_f(r['random_loss']):>10}{_f(r['mean_diff']):>8}  "
            f"{'[' + _f(r['ci99_low']) + ', ' + _f(r['ci99_high']) + ']':<17}"
            f"{'[' + _f(r['ci99_targets_low']) + ', ' + _f(r['ci99_targets_high']) + ']':<18}"
            f"{_f(r['share_random_better']):>12}{_f(r['gap_when_random_better']):>7}{_f(r['share_ties'], 2):>6}")
    return "\n".join(lines)


def fidelity_table(layers: list[dict]) -> str:
    """One line per (tau, scope, mode, layer): accuracy with core, random (mean ± sd) and L2 neurons."""
    lines = ["fidelity: share of class images still predicted as the class "
             "(mask = zero these neurons, retain = zero all others)",
             f"{'tau':>4} {'scope':<11}{'mode':<7}{'layer':<14}{'n':>6}{'core':>7}{'random':>8}{'± sd':>7}"
             f"{'n(L2)':>7}{'L2':>7}"]
    keyed = {(r["tau"], r["scope"], r["mode"], r["layer_index"], r["method"]): r for r in layers}
    for key in dict.fromkeys(k[:4] for k in keyed):
        core, rand, l2 = (keyed.get((*key, m)) for m in ("core", "random", "l2"))
        if core is None or rand is None:
            continue
        lines.append(
            f"{key[0]:>4} {key[1]:<11}{key[2]:<7}{core['layer']:<14}{core['n_neurons']:>6.0f}"
            f"{_f(core['accuracy']):>7}{_f(rand['accuracy']):>8}{_f(rand['accuracy_sd']):>7}"
            + (f"{l2['n_neurons']:>7.0f}{_f(l2['accuracy']):>7}" if l2 else f"{'-':>7}{'n/a':>7}"))
    return "\n".join(lines)


def weights_table(rows: list[dict], sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 50)) -> str:
    """Mean correlations per layer at a few set sizes."""
    lines = [f"weights: correlation of summed |IG| with concept change; {SIGN_CONVENTION}",
             f"{'layer<-lower':<22}{'size':>5}{'targets':>8}{'defined':>8}{'pearson':>9}{'spearman':>9}"
             f"{'mean change':>12}"]
    for r in rows:
        if r["size"] in sizes:
            lines.append(f"{r['layer'] + '<-' + r['lower']:<22}{r['size']:>5}{r['n_targets']:>8}{r['n_defined']:>8}"
                         f"{_f(r['pearson']):>9}{_f(r['spearman']):>9}{_f(r['mean_change']):>12}")
    return "\n".join(lines)
