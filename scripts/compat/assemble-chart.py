#!/usr/bin/env python3
"""Copies a chart from a local checkout and fills its charts/ directory
with its dependencies, found as chart directories named after them under
the given search directories (other charts of the same checkout, other
checkouts): what `helm dependency build` would download, without a network.
Nested dependencies are filled the same way.

Usage: scripts/compat/assemble-chart.py CHART_DIR OUT_DIR SEARCH_DIR...
(needs PyYAML: pip install pyyaml)
Then render OUT_DIR with scripts/compat/helm-charts.sh.
"""
import os
import shutil
import sys

import yaml  # PyYAML


def dependency_names(chart_yaml):
    """Names under `dependencies:` in a Chart.yaml (PyYAML reads it)."""
    with open(chart_yaml, encoding="utf-8") as f:
        chart = yaml.safe_load(f) or {}
    return [d["name"] for d in chart.get("dependencies") or [] if "name" in d]


def fill(chart_dir, search):
    charts = os.path.join(chart_dir, "charts")
    for name in dependency_names(os.path.join(chart_dir, "Chart.yaml")):
        target = os.path.join(charts, name)
        if os.path.exists(target):
            continue
        found = [os.path.join(d, name) for d in search
                 if os.path.isfile(os.path.join(d, name, "Chart.yaml"))]
        if not found:
            sys.exit(f"{chart_dir}: dependency {name} not found under {search}")
        shutil.copytree(found[0], target, symlinks=True)
        fill(target, search)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    chart, out, search = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not os.path.isfile(os.path.join(chart, "Chart.yaml")):
        sys.exit(f"{chart}: no Chart.yaml, not a chart")
    shutil.copytree(chart, out, symlinks=True)
    fill(out, search)


main()
