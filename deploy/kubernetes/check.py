#!/usr/bin/env python3
"""Checks the Kubernetes manifests in this directory, offline.

    python3 -m pip install -r deploy/kubernetes/requirements.txt
    python3 deploy/kubernetes/check.py

1. Every YAML document of every *.yaml file here parses.
2. Each SpinApp is valid against spinapp.schema.json, a JSON Schema written by hand from
   the Spin Operator's CRD (its $comment names the source files). Every other document (the
   Secret) is valid against the Kubernetes schemas that the kubernetes-validate package
   ships, in strict mode (unknown fields are errors), for KUBERNETES_VERSION.
3. The manifests agree with each other and with spin.toml: each SpinApp variable is an
   application variable of spin.toml; the ones spin.toml marks secret come from a Secret,
   never a literal value; every referenced Secret key exists in the example Secret, or the
   file says how to create that Secret; both SpinApps ask for 2 replicas and probe the
   health routes; spinapp.shared-kv.yaml is spinapp.yaml plus runtimeConfig, and
   runtime-config.toml configures the same store.
4. The checks bite: broken variants of spinapp.yaml and of the Secret (a missing field, a
   misspelt one, a secret as a literal, ...) must each be refused.

It prints one line per file and a summary, and exits 1 on any problem.
"""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCHEMA = HERE / "spinapp.schema.json"
# The Kubernetes release whose schemas validate the core objects (kubernetes-validate ships
# them in the package, so nothing is fetched).
KUBERNETES_VERSION = "1.33"
SPINAPP = ("core.spinkube.dev/v1alpha1", "SpinApp")
REPLICAS = 2
PROBES = {"readiness": "/health/ready", "liveness": "/health"}
# Variables a deployment on SpinKube must set: the token secret, the shared database and the
# host that spin.toml's allowed_outbound_hosts needs for it.
REQUIRED_VARIABLES = {"jwt_secret", "database_url", "database_host"}

Document = dict[str, Any]


def load_documents() -> list[tuple[Path, int, Document]]:
    """Every non-empty YAML document here, with its file and position."""
    documents = []
    for path in sorted(HERE.glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise TypeError(f"{path.name} document {i}: not a mapping")
                documents.append((path, i, doc))
    return documents


def spinapp_errors(validator: jsonschema.protocols.Validator, doc: Document) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]


def kubernetes_errors(doc: Document) -> list[str]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no Kubernetes {KUBERNETES_VERSION} schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    except kubernetes_validate.ValidationError as e:
        return [f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}"]
    return []


def secret_refs(spinapp: Document) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, secretKeyRef) for every Secret the SpinApp reads."""
    spec = spinapp.get("spec", {})
    for var in spec.get("variables", []):
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            yield f"variable {var.get('name')}", ref
    for store in spec.get("runtimeConfig", {}).get("keyValueStores", []):
        for option in store.get("options", []):
            ref = (option.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                yield f"key-value store {store.get('name')} option {option.get('name')}", ref


def consistency_errors(documents: list[tuple[Path, int, Document]]) -> list[str]:
    """The cross-file rules (point 3 of the module's doc)."""
    errors = []
    manifest = tomllib.loads((ROOT / "spin.toml").read_text(encoding="utf-8"))
    declared = manifest.get("variables", {})
    secret_vars = {name for name, v in declared.items() if v.get("secret")}
    secrets = {
        doc["metadata"]["name"]: set(doc.get("stringData", {})) | set(doc.get("data", {}))
        for _, _, doc in documents
        if (doc.get("apiVersion"), doc.get("kind")) == ("v1", "Secret")
    }
    spinapps = {
        path.name: doc for path, _, doc in documents if (doc.get("apiVersion"), doc.get("kind")) == SPINAPP
    }
    if set(spinapps) != {"spinapp.yaml", "spinapp.shared-kv.yaml"}:
        errors.append(
            f"expected SpinApps in spinapp.yaml and spinapp.shared-kv.yaml, found {sorted(spinapps)}"
        )

    for name, app in spinapps.items():
        where = name
        spec = app.get("spec", {})
        variables = spec.get("variables", [])
        names = [v.get("name") for v in variables]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            errors.append(f"{where}: variable {dup} is set twice")
        for missing in sorted(REQUIRED_VARIABLES - set(names)):
            errors.append(f"{where}: variable {missing} is not set")
        for var in variables:
            vname = var.get("name")
            if vname not in declared:
                errors.append(f"{where}: variable {vname} is not an application variable of spin.toml")
            if vname in secret_vars and not (var.get("valueFrom") or {}).get("secretKeyRef"):
                errors.append(
                    f"{where}: variable {vname} is secret in spin.toml: take it from a Secret (valueFrom.secretKeyRef)"
                )
        text = (HERE / name).read_text(encoding="utf-8")
        for ref_where, ref in secret_refs(app):
            secret, key = ref.get("name"), ref.get("key")
            if secret in secrets:
                if key not in secrets[secret]:
                    errors.append(
                        f"{where}: {ref_where} reads key {key} of Secret {secret}, which has {sorted(secrets[secret])}"
                    )
            elif f"kubectl create secret generic {secret}" not in text:
                errors.append(
                    f"{where}: {ref_where} reads Secret {secret}, which is neither here nor explained with `kubectl create secret generic {secret}`"
                )
        if spec.get("replicas") != REPLICAS:
            errors.append(f"{where}: replicas is {spec.get('replicas')!r}, not {REPLICAS}")
        for probe, path in PROBES.items():
            got = spec.get("checks", {}).get(probe, {}).get("httpGet", {}).get("path")
            if got != path:
                errors.append(f"{where}: the {probe} probe asks {got!r}, not {path!r}")

    plain, shared = spinapps.get("spinapp.yaml"), spinapps.get("spinapp.shared-kv.yaml")
    if plain and shared:
        if "runtimeConfig" in plain.get("spec", {}):
            errors.append("spinapp.yaml: has a runtimeConfig (its key-value store is meant to be per pod)")
        without = copy.deepcopy(shared)
        runtime = without.get("spec", {}).pop("runtimeConfig", {})
        if without != plain:
            errors.append("spinapp.shared-kv.yaml: differs from spinapp.yaml elsewhere than in runtimeConfig")
        stores = {s.get("name"): s for s in runtime.get("keyValueStores", [])}
        rc = tomllib.loads((HERE / "runtime-config.toml").read_text(encoding="utf-8"))
        rc_default = rc.get("key_value_store", {}).get("default", {})
        if "default" not in stores:
            errors.append("spinapp.shared-kv.yaml: configures no key-value store named default")
        elif stores["default"].get("type") != rc_default.get("type"):
            errors.append("spinapp.shared-kv.yaml and runtime-config.toml configure different store types")
        if not rc_default.get("type") or not rc_default.get("url"):
            errors.append("runtime-config.toml: [key_value_store.default] needs type and url")
    for name in secrets:
        doc = next(d for _, _, d in documents if d.get("kind") == "Secret" and d["metadata"]["name"] == name)
        for key, value in doc.get("stringData", {}).items():
            if "REPLACE" not in str(value):
                errors.append(
                    f"Secret {name}: {key} does not look like a placeholder (an example must hold none)"
                )
    return errors


Change = Callable[[Document], None]


def broken_variants() -> list[tuple[str, str, str, Change]]:
    """Changes that break a good document, each as (label, check that must refuse it, the
    document it applies to: "spinapp" for both SpinApps or "secret", the change)."""

    def set_var(name: str, entry: dict[str, Any]) -> Change:
        def change(d: Document) -> None:
            d["spec"]["variables"] = [entry if v["name"] == name else v for v in d["spec"]["variables"]]

        return change

    def var(i: int) -> Callable[[Document], dict[str, Any]]:
        return lambda d: d["spec"]["variables"][i]

    return [
        ("no image", "schema", "spinapp", lambda d: d["spec"].pop("image")),
        ("no executor", "schema", "spinapp", lambda d: d["spec"].pop("executor")),
        (
            "`replica` misspelt",
            "schema",
            "spinapp",
            lambda d: d["spec"].update(replica=d["spec"].pop("replicas")),
        ),
        ("replicas as text", "schema", "spinapp", lambda d: d["spec"].update(replicas="2")),
        (
            "the old API group",
            "schema",
            "spinapp",
            lambda d: d.update(apiVersion="core.spinoperator.dev/v1alpha1"),
        ),
        (
            "a secretKeyRef without key",
            "schema",
            "spinapp",
            lambda d: var(0)(d)["valueFrom"]["secretKeyRef"].pop("key"),
        ),
        ("value and valueFrom together", "schema", "spinapp", lambda d: var(0)(d).update(value="x")),
        (
            "an upper-case variable name",
            "schema",
            "spinapp",
            lambda d: var(2)(d).update(name="DATABASE_HOST"),
        ),
        (
            "a probe without httpGet.path",
            "schema",
            "spinapp",
            lambda d: d["spec"]["checks"]["readiness"]["httpGet"].pop("path"),
        ),
        (
            "a probe timeout of 0",
            "schema",
            "spinapp",
            lambda d: d["spec"]["checks"]["readiness"].update(timeoutSeconds=0),
        ),
        (
            "liveness successThreshold 2",
            "schema",
            "spinapp",
            lambda d: d["spec"]["checks"]["liveness"].update(successThreshold=2),
        ),
        (
            "a key-value store without type",
            "schema",
            "spinapp",
            lambda d: d["spec"].update(runtimeConfig={"keyValueStores": [{"name": "default"}]}),
        ),
        (
            "jwt_secret as a literal",
            "consistency",
            "spinapp",
            set_var("jwt_secret", {"name": "jwt_secret", "value": "x" * 32}),
        ),
        (
            "a variable spin.toml lacks",
            "consistency",
            "spinapp",
            lambda d: d["spec"]["variables"].append({"name": "no_such_variable", "value": "1"}),
        ),
        ("database_host not set", "consistency", "spinapp", lambda d: d["spec"]["variables"].pop(2)),
        (
            "a key the Secret lacks",
            "consistency",
            "spinapp",
            lambda d: var(1)(d)["valueFrom"]["secretKeyRef"].update(key="databaseUrl"),
        ),
        (
            "a Secret nobody creates",
            "consistency",
            "spinapp",
            lambda d: var(1)(d)["valueFrom"]["secretKeyRef"].update(name="elsewhere"),
        ),
        ("one replica", "consistency", "spinapp", lambda d: d["spec"].update(replicas=1)),
        (
            "readiness on /health",
            "consistency",
            "spinapp",
            lambda d: d["spec"]["checks"]["readiness"]["httpGet"].update(path="/health"),
        ),
        (
            "Secret `stringdata` misspelt",
            "kubernetes",
            "secret",
            lambda d: d.update(stringdata=d.pop("stringData")),
        ),
        ("Secret `immutable` as text", "kubernetes", "secret", lambda d: d.update(immutable="yes")),
        (
            "Secret data that is not base64",
            "kubernetes",
            "secret",
            lambda d: d.update(data={"jwt_secret": 5}),
        ),
        (
            "a real-looking value in the example Secret",
            "consistency",
            "secret",
            lambda d: d["stringData"].update(jwt_secret="hunter2"),
        ),
    ]


def refused(
    validator: jsonschema.protocols.Validator,
    documents: list[tuple[Path, int, Document]],
    check: str,
    target: str,
    change: Change,
) -> bool:
    """Whether `check` finds a problem once `change` is applied to the `target` documents."""
    kinds = {"spinapp": SPINAPP, "secret": ("v1", "Secret")}[target]
    changed = []
    for p, i, d in documents:
        if (d.get("apiVersion"), d.get("kind")) == kinds:
            d = copy.deepcopy(d)
            change(d)
        changed.append((p, i, d))
    targets = [d for _, _, d in changed if d.get("kind") == kinds[1]]
    if check == "schema":
        return any(spinapp_errors(validator, d) for d in targets)
    if check == "kubernetes":
        return any(kubernetes_errors(d) for d in targets)
    return bool(consistency_errors(changed))


def main() -> int:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    try:
        documents = load_documents()
    except (yaml.YAMLError, TypeError) as e:
        print(f"FAIL parsing: {e}")
        return 1

    problems = 0
    for path in sorted({p for p, _, _ in documents}):
        file_errors = []
        for _, i, doc in (d for d in documents if d[0] == path):
            kind = (doc.get("apiVersion"), doc.get("kind"))
            errors = spinapp_errors(validator, doc) if kind == SPINAPP else kubernetes_errors(doc)
            file_errors += [f"document {i} ({kind[1]}): {e}" for e in errors]
        kinds = ", ".join(str(d.get("kind")) for p, _, d in documents if p == path)
        print(f"{'ok  ' if not file_errors else 'FAIL'} {path.name}: {kinds}")
        for e in file_errors:
            print(f"       {e}")
        problems += len(file_errors)

    errors = consistency_errors(documents)
    print(
        f"{'ok  ' if not errors else 'FAIL'} consistency with spin.toml, runtime-config.toml and each other"
    )
    for e in errors:
        print(f"       {e}")
    problems += len(errors)

    # The checks must refuse broken documents, or they prove nothing. (A consistency change
    # goes to both SpinApps, which must otherwise stay equal.)
    if consistency_errors(documents):
        print("FAIL the broken variants need consistent manifests to start from")
        problems += 1
    else:
        variants = broken_variants()
        caught = 0
        for label, check, target, change in variants:
            if refused(validator, documents, check, target, change):
                caught += 1
            else:
                print(f"FAIL a broken variant passed the {check} check: {label}")
                problems += 1
        print(
            f"{'ok  ' if caught == len(variants) else 'FAIL'} {caught} of {len(variants)} broken variants refused"
        )

    print(f"k8s manifests: {len(documents)} documents checked, {problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
