#!/usr/bin/env python3
"""Replays kro's own corpus against gitplane; see scripts/compat/kro.sh.

Three parts, each printing PASS/FAIL (or SKIP with the reason) per case:

examples  every file under examples/ holding a ResourceGraphDefinition,
          checked with `gitplane graph check` (accepted, or the error with
          its line).
offline   each step of test/e2e/chainsaw/*/chainsaw-test.yaml replayed
          without a cluster: RGD asserts against `graph check -o json`,
          CRD asserts against `graph check --crd -o json`, the objects an
          instance becomes against `render --expand-graphs`, `error` steps
          on an instance against the schema (the instance must be refused).
          What only a running controller writes (an instance's status,
          generation, the API server's CRD status) is left out of the
          comparison, and asserts on an instance are SKIPped.
live      the same steps against `gitplane apiserver` with `gitplane graph
          run`, through kubectl, as chainsaw runs them: each test in its own
          namespace, asserts retried until they hold or 30 s pass.

Asserts compare as chainsaw does: every field the expected object names must
be in the actual one with the same value, lists element by element and of
the same length; `(list[?key == 'value'])` keys filter a list first.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

SERVER_SET_METADATA = ("generation", "resourceVersion", "uid", "creationTimestamp", "managedFields")
ASSERT_TIMEOUT = 30


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


# ---- chainsaw's comparison --------------------------------------------------

FILTER = re.compile(r"^\((\w+)\[\?\s*(\w+)\s*==\s*'([^']*)'\s*\]\)$")


def matches(expected, actual, path="") -> list:
    """The differences between an expected subtree and the actual one."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, found {json.dumps(actual)}"]
        problems = []
        for key, value in expected.items():
            if key.startswith("("):
                m = FILTER.match(key)
                if not m:
                    problems.append(f"{path}.{key}: expression not supported by this script")
                    continue
                field, k, v = m.groups()
                items = [i for i in (actual.get(field) or []) if isinstance(i, dict) and str(i.get(k)) == v]
                problems += matches(value, items, f"{path}.{field}[?{k}=={v}]")
            elif key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += matches(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, found {json.dumps(actual)[:200]}"]
        problems = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            problems += matches(e, a, f"{path}[{i}]")
        return problems
    if expected == actual or (isinstance(actual, (int, float)) and str(expected) == str(actual)):
        return []
    if isinstance(expected, str) and str(actual).lower() == expected.lower() and isinstance(actual, bool):
        return []
    return [f"{path}: expected {json.dumps(expected)}, found {json.dumps(actual)}"]


def same_object(expected, actual):
    e, a = expected.get("metadata", {}), actual.get("metadata", {})
    return (expected.get("kind") == actual.get("kind")
            and e.get("name") == a.get("name")
            and (not e.get("namespace") or e.get("namespace") == a.get("namespace")))


# ---- the tests --------------------------------------------------------------

def steps(test_dir):
    """(operation, argument) pairs in order: apply/assert/error with a file,
    delete with a ref or file, wait with its spec."""
    test = documents(os.path.join(test_dir, "chainsaw-test.yaml"))[0]
    for step in test["spec"]["steps"]:
        for op in step.get("try", []):
            for name in ("apply", "assert", "error", "delete", "wait", "patch", "update", "create"):
                if name in op:
                    yield name, op[name]


def is_rgd(doc):
    return doc.get("kind") == "ResourceGraphDefinition" and str(doc.get("apiVersion", "")).startswith("kro.run/")


class Offline:
    """Actual objects computed by gitplane without a cluster."""

    def __init__(self, gitplane, work):
        self.gitplane, self.work = gitplane, work

    def start_test(self, name):
        self.applied = []  # documents, in order

    def apply(self, path):
        for doc in documents(path):
            self.applied = [d for d in self.applied if not same_object(doc, d)] + [doc]

    def delete(self, ref):
        self.applied = [d for d in self.applied if not same_object(ref, d)]

    def graphs(self):
        return [d for d in self.applied if is_rgd(d)]

    def instance_kinds(self):
        return {g["spec"]["schema"]["kind"] for g in self.graphs()}

    def write(self, docs, name):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            yaml.safe_dump_all(docs, f)
        return path

    def gitplane_json(self, *args):
        out = run([self.gitplane, *args])
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
        found = json.loads(out.stdout)
        if isinstance(found, dict) and found.get("kind") == "List":
            return found["items"]
        return found if isinstance(found, list) else [found]

    def actual(self, expected):
        """The object gitplane computes for an assert, or a reason to skip."""
        kind = expected.get("kind")
        if kind in self.instance_kinds():
            return None, "an instance's status is written by a running controller"
        if kind in ("ResourceGraphDefinition", "CustomResourceDefinition"):
            graphs = self.graphs()
            if not graphs:
                return {}, None
            path = self.write(graphs, "graphs.yaml")
            args = ["graph", "check", path, "-o", "json"] + (["--crd"] if kind == "CustomResourceDefinition" else [])
            found = self.gitplane_json(*args)
        else:
            instances = [d for d in self.applied if d.get("kind") in self.instance_kinds()]
            others = [d for d in self.applied if not is_rgd(d) and d not in instances]
            path = self.write(self.graphs() + instances + others, "all.yaml")
            found = self.gitplane_json("render", path, "--expand-graphs", "-o", "json")
        for doc in found:
            if same_object({**expected, "metadata": {"name": expected["metadata"]["name"]}}, doc):
                return doc, None
        return {}, None

    def refused(self, doc):
        """For an `error` step on an instance: is the instance refused?"""
        path = self.write(self.graphs() + [doc], "error.yaml")
        out = run([self.gitplane, "render", path, "--expand-graphs", "-o", "json"])
        return out.returncode != 0, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""

    @staticmethod
    def comparable(expected):
        """The expected object without what only the API server writes."""
        expected = json.loads(json.dumps(expected))
        meta = expected.get("metadata", {})
        for key in SERVER_SET_METADATA:
            meta.pop(key, None)
        if expected.get("kind") == "CustomResourceDefinition":
            expected.pop("status", None)
            expected.get("spec", {}).pop("conversion", None)
        if is_rgd(expected):
            # Ready needs the generated CRD served: a cluster's verdict.
            expected.get("status", {}).pop("(conditions[?type == 'Ready'])", None)
        return expected


class Live:
    """Actual objects from gitplane's API server and graph controller."""

    def __init__(self, gitplane, work):
        self.gitplane, self.work = gitplane, work
        self.kubeconfig = os.path.join(work, "kubeconfig")
        self.server = subprocess.Popen(
            [gitplane, "apiserver", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(work, "data"),
             "--kubeconfig-out", self.kubeconfig], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not (os.path.exists(self.kubeconfig) and self.kubectl("get", "--raw", "/version").returncode == 0):
            if time.time() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.3)
        self.controller = subprocess.Popen(
            [gitplane, "graph", "run", "--kubeconfig", self.kubeconfig],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "controller.log"), "w"))

    def close(self):
        for p in (self.controller, self.server):
            p.terminate()
            p.wait()

    def kubectl(self, *args):
        return run(["kubectl", "--kubeconfig", self.kubeconfig, *args])

    def start_test(self, name):
        self.namespace = "chainsaw-" + name[:50]
        self.kubectl("create", "namespace", self.namespace)

    def apply(self, path):
        # As chainsaw: the test's namespace for objects that name none.
        for doc in documents(path):
            namespace = doc.get("metadata", {}).get("namespace") or self.namespace
            out = run(["kubectl", "--kubeconfig", self.kubeconfig, "apply", "-n", namespace, "-f", "-"],
                      input=json.dumps(doc))
            if out.returncode != 0:
                raise RuntimeError(out.stderr.strip())

    def delete(self, ref):
        group_version = ref["apiVersion"]
        resource = f"{ref['kind']}.{group_version.split('/')[-1]}.{group_version.split('/')[0]}" if "/" in group_version else ref["kind"]
        self.kubectl("delete", "-n", self.namespace, resource, ref["metadata"]["name"] if "metadata" in ref else ref["name"])

    def get(self, expected):
        api = expected["apiVersion"]
        resource = f"{expected['kind']}.{api.split('/')[1]}.{api.split('/')[0]}" if "/" in api else expected["kind"]
        namespace = expected["metadata"].get("namespace") or self.namespace
        out = self.kubectl("get", "-n", namespace, resource, expected["metadata"]["name"], "-o", "json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    @staticmethod
    def comparable(expected):
        return expected


def replay(mode, kro, gitplane, only=None):
    root = os.path.join(kro, "test", "e2e", "chainsaw")
    work = tempfile.mkdtemp(prefix="gitplane-kro-")
    cluster = Live(gitplane, work) if mode == "live" else Offline(gitplane, work)
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    try:
        for name in sorted(os.listdir(root)):
            test_dir = os.path.join(root, name)
            if not os.path.isdir(test_dir) or (only and name != only):
                continue
            cluster.start_test(name)
            for op, arg in steps(test_dir):
                verdict, detail = step(cluster, mode, test_dir, op, arg)
                if verdict is None:
                    continue
                counts[verdict] += 1
                label = arg.get("file") if isinstance(arg, dict) and "file" in arg else op
                print(f"{verdict} {name} {op} {label}" + (f": {detail}" if detail else ""), flush=True)
    finally:
        if mode == "live":
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{mode}: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return counts


def step(cluster, mode, test_dir, op, arg):
    """Runs one operation; returns (verdict, detail), or (None, None) for
    operations that are not checks."""
    path = os.path.join(test_dir, arg["file"]) if isinstance(arg, dict) and "file" in arg else None
    if op in ("apply", "create", "update", "patch"):
        try:
            cluster.apply(path)
        except RuntimeError as e:
            return "FAIL", f"apply refused: {e}"
        return None, None
    if op == "delete":
        cluster.delete(arg.get("ref", arg))
        return None, None
    if op == "wait":
        if mode == "offline":
            return "SKIP", "waits for a running controller"
        expected = {"apiVersion": arg["apiVersion"], "kind": arg["kind"], "metadata": {"name": arg["name"]},
                    "status": {"(conditions[?type == 'Ready'])": [{"status": "True"}]}}
        return check(cluster, expected, negate=False)
    verdicts = []
    for doc in documents(path):
        if op == "error" and mode == "offline":
            if doc.get("kind") not in cluster.instance_kinds():
                verdicts.append(("SKIP", "an error step on a non-instance needs a cluster"))
                continue
            refused, why = cluster.refused(doc)
            verdicts.append(("PASS", why) if refused else ("FAIL", "the instance was accepted"))
            continue
        verdicts.append(check(cluster, doc, negate=(op == "error")))
    for wanted in ("FAIL", "SKIP", "PASS"):
        for verdict, detail in verdicts:
            if verdict == wanted:
                return verdict, detail
    return "SKIP", "empty file"


def check(cluster, expected, negate):
    expected = cluster.comparable(expected)
    deadline = time.time() + (ASSERT_TIMEOUT if isinstance(cluster, Live) else 0)
    while True:
        if isinstance(cluster, Live):
            actual, skip = cluster.get(expected), None
        else:
            try:
                actual, skip = cluster.actual(expected)
            except RuntimeError as e:
                return "FAIL", str(e)
        if skip:
            return "SKIP", skip
        problems = ["not found"] if not actual else matches(expected, actual)
        if negate and problems:
            return "PASS", None
        if not negate and not problems:
            return "PASS", None
        if time.time() >= deadline:
            return "FAIL", ("the object exists and matches" if negate else "; ".join(problems[:3]))
        time.sleep(1)


def examples(kro, gitplane):
    accepted = rejected = 0
    for dirpath, _, files in sorted(os.walk(os.path.join(kro, "examples"))):
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(dirpath, f)
            try:
                docs = documents(path)
            except yaml.YAMLError:
                docs = None
            text = open(path).read()
            if docs is not None and not any(is_rgd(d) for d in docs if isinstance(d, dict)):
                continue
            if docs is None and "kind: ResourceGraphDefinition" not in text:
                continue
            out = run([gitplane, "graph", "check", path])
            rel = os.path.relpath(path, kro)
            if out.returncode == 0:
                accepted += 1
                print(f"PASS {rel}")
            else:
                rejected += 1
                print(f"FAIL {rel}: {out.stderr.strip().splitlines()[-1]}")
    print(f"examples: {accepted} accepted, {rejected} rejected")


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    kro, gitplane, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
    only = None
    if "--test" in parts:
        only = parts[parts.index("--test") + 1]
        parts = [p for p in parts if p not in ("--test", only)]
    for part in parts:
        if part == "examples":
            examples(kro, gitplane)
        elif part in ("offline", "live"):
            replay(part, kro, gitplane, only)
        else:
            sys.exit(f"unknown part {part!r} (examples, offline, live)")


if __name__ == "__main__":
    main()
