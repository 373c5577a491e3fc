#!/usr/bin/env python3
"""Checks of the Kubernetes manifests in k8s/ (driven by tests/e2e/k8s.rs).

`check.py validate K8S_DIR` exits 0 and prints "k8s manifests: ok" only if:
- every built-in object validates strictly (unknown fields are errors) against the
  Kubernetes OpenAPI schemas bundled by the `kubernetes-validate` package, for the
  oldest and the newest Kubernetes version we claim;
- the Prometheus Operator objects (ServiceMonitor, PrometheusRule), whose CRD schemas
  that package does not bundle, validate against the structural JSON schemas below
  (the fields we use, unknown fields refused);
- the objects agree with each other and with the node (selectors, named ports, probe
  paths, bootstrap peers, grace period, hardening, the Dockerfile);
- `guts-node config check` (GUTS_NODE_BIN) accepts the ConfigMap's settings and
  refuses the placeholder secrets;
- `promtool check rules` accepts the PrometheusRule's groups;
- `kubectl kustomize` builds the directory, when kubectl is installed (its output is
  validated again); when kubectl is absent this step says so and is not counted.

`check.py metric-names K8S_DIR` prints, as JSON, every metric name the alert rules and
the Grafana dashboard query.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

# The oldest Kubernetes we support (persistentVolumeClaimRetentionPolicy is on by
# default from 1.27) and the newest schemas the package has.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]

# Settings the manifests set that the node does not read yet: they land with
# replication. `config check` warns about unknown GUTS_* variables; only these may be
# warned about.
PENDING_SETTINGS = {
    "GUTS_P2P_ADDR",
    "GUTS_BOOTSTRAP_PEERS",
    "GUTS_MDNS",
    "GUTS_SEED",
    "GUTS_P2P_TIMEOUT",
    "GUTS_RETRY_MAX_ATTEMPTS",
    "GUTS_CIRCUIT_BREAKER_THRESHOLD",
    "GUTS_ANTI_ENTROPY_INTERVAL",
}

STRING = {"type": "string", "minLength": 1}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": STRING,
        "namespace": STRING,
        "labels": LABELS,
        "annotations": LABELS,
    },
    "additionalProperties": False,
}
SELECTOR = {
    "type": "object",
    "properties": {
        "matchLabels": LABELS,
        "matchExpressions": {"type": "array"},
    },
    "additionalProperties": False,
}

# monitoring.coreos.com/v1 ServiceMonitor, the fields Guts uses, after the Prometheus
# Operator's API reference.
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": STRING},
                    },
                    "additionalProperties": False,
                },
                "jobLabel": STRING,
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": STRING,
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": DURATION,
                            "scrapeTimeout": DURATION,
                            "honorLabels": {"type": "boolean"},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

# monitoring.coreos.com/v1 PrometheusRule: groups of alerting or recording rules.
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": STRING,
                            "interval": DURATION,
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "oneOf": [
                                        {"required": ["alert"]},
                                        {"required": ["record"]},
                                    ],
                                    "properties": {
                                        "alert": STRING,
                                        "record": STRING,
                                        "expr": STRING,
                                        "for": DURATION,
                                        "keep_firing_for": DURATION,
                                        "labels": LABELS,
                                        "annotations": LABELS,
                                    },
                                    "additionalProperties": False,
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

CRD_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}

errors = []


def fail(message):
    errors.append(message)


def load(k8s):
    """Every object of every manifest (kustomization.yaml aside), with its file."""
    objects = []
    for path in sorted(Path(k8s).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                objects.append((path.name, doc))
    return objects


def validate_schemas(objects, where):
    for name, doc in objects:
        kind = doc.get("kind")
        what = f"{where}{name}: {kind}/{doc.get('metadata', {}).get('name')}"
        if kind in CRD_SCHEMAS:
            validator = jsonschema.Draft202012Validator(CRD_SCHEMAS[kind])
            for e in validator.iter_errors(doc):
                fail(f"{what}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{what} (Kubernetes {version}): {'/'.join(map(str, e.path))}: {e.message}")
            except Exception as e:  # no schema for the kind: a kind we did not mean
                fail(f"{what} (Kubernetes {version}): {type(e).__name__}: {e}")


def one(objects, kind, name=None):
    found = [d for _, d in objects if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        fail(f"expected one {kind} {name or ''}, found {len(found)}")
        return {}
    return found[0]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def port_of(addr):
    """The TCP port of a socket address or a /ip4/.../tcp/N multiaddr."""
    m = re.search(r"(?::|/tcp/)(\d+)$", addr)
    return int(m.group(1)) if m else None


def check_consistency(k8s, objects):
    kustomization = yaml.safe_load((Path(k8s) / "kustomization.yaml").read_text())
    files = {p.name for p in Path(k8s).glob("*.yaml")} - {"kustomization.yaml"}
    if set(kustomization.get("resources", [])) != files:
        fail(f"kustomization resources {sorted(kustomization.get('resources', []))} != files {sorted(files)}")
    namespace = one(objects, "Namespace")
    ns = namespace.get("metadata", {}).get("name")
    if kustomization.get("namespace") != ns:
        fail(f"kustomization namespace {kustomization.get('namespace')} != Namespace {ns}")
    for name, doc in objects:
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != ns:
            fail(f"{name}: {doc['kind']} is not in namespace {ns}")

    sts = one(objects, "StatefulSet")
    config = one(objects, "ConfigMap", "guts-config").get("data", {})
    secret = one(objects, "Secret")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if not matches(spec["selector"]["matchLabels"], pod_labels):
        fail("StatefulSet selector does not match its pod labels")
    containers = pod["containers"]
    if len(containers) != 1:
        fail("the pod should have exactly one container")
    c = containers[0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for name, var in [("api", "GUTS_API_ADDR"), ("metrics", "GUTS_METRICS_ADDR"), ("p2p", "GUTS_P2P_ADDR"), ("ssh", "GUTS_SSH_ADDR")]:
        if ports.get(name) != port_of(config.get(var, "")):
            fail(f"container port {name}={ports.get(name)} but {var}={config.get(var)}")
    for addr_var in ["GUTS_API_ADDR", "GUTS_METRICS_ADDR", "GUTS_SSH_ADDR"]:
        if not config.get(addr_var, "").startswith("0.0.0.0:"):
            fail(f"{addr_var} must listen on 0.0.0.0 in a pod")

    # envFrom names exist.
    refs = {(k, e[k]["name"]) for e in c.get("envFrom", []) for k in e}
    if refs != {("configMapRef", "guts-config"), ("secretRef", secret["metadata"]["name"])}:
        fail(f"envFrom {refs}")
    for key in secret.get("stringData", {}) or {}:
        if not key.startswith("GUTS_"):
            fail(f"Secret key {key} is not a GUTS_ variable")

    # Probes on the real endpoints, on the api port.
    for probe, path in [("startupProbe", "/health/startup"), ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")]:
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "api":
            fail(f"{probe} must GET {path} on port api, not {get}")

    # The drain fits in the grace period.
    grace = pod.get("terminationGracePeriodSeconds", 30)
    shutdown = int(config.get("GUTS_SHUTDOWN_TIMEOUT", "20"))
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
    if grace <= shutdown + pause:
        fail(f"terminationGracePeriodSeconds {grace} must exceed the preStop pause {pause} + GUTS_SHUTDOWN_TIMEOUT {shutdown}")

    # Peers find each other before either is ready.
    if spec.get("podManagementPolicy") != "Parallel":
        fail("podManagementPolicy must be Parallel (readiness waits for a peer)")
    headless = one(objects, "Service", spec["serviceName"])
    if headless.get("spec", {}).get("clusterIP") != "None" or not headless["spec"].get("publishNotReadyAddresses"):
        fail("the StatefulSet's service must be headless and publish not-ready addresses")
    env = c.get("env", [])
    env_names = [e["name"] for e in env]
    peers = next((e.get("value", "") for e in env if e["name"] == "GUTS_BOOTSTRAP_PEERS"), "")
    if "POD_NAMESPACE" not in env_names or env_names.index("POD_NAMESPACE") > env_names.index("GUTS_BOOTSTRAP_PEERS"):
        fail("POD_NAMESPACE must be defined before GUTS_BOOTSTRAP_PEERS, which uses it")
    expected = ",".join(
        f"/dns4/{sts['metadata']['name']}-{i}.{spec['serviceName']}.$(POD_NAMESPACE).svc.cluster.local/tcp/{ports.get('p2p')}"
        for i in range(spec["replicas"])
    )
    if peers != expected:
        fail(f"GUTS_BOOTSTRAP_PEERS must name every pod:\n  {peers}\n  {expected}")
    if "GUTS_PRIVATE_KEY" in config or "GUTS_PRIVATE_KEY" in env_names:
        fail("GUTS_PRIVATE_KEY must not be shared: each pod generates its key into its volume")

    # Storage.
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    if "data" not in claims or mounts.get("data") != config.get("GUTS_DATA_DIR"):
        fail(f"the data claim must be mounted at GUTS_DATA_DIR ({config.get('GUTS_DATA_DIR')}), mounts {mounts}")

    # Hardening.
    psc = pod.get("securityContext", {})
    csc = c.get("securityContext", {})
    if not psc.get("runAsNonRoot") or not psc.get("runAsUser") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"pod securityContext not hardened: {psc}")
    if not (csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
            and csc.get("capabilities", {}).get("drop") == ["ALL"] and not csc.get("capabilities", {}).get("add")):
        fail(f"container securityContext not hardened: {csc}")
    if pod.get("automountServiceAccountToken") is not False:
        fail("the pod needs no service account token")
    res = c.get("resources", {})
    for part in ["requests", "limits"]:
        for r in ["cpu", "memory"]:
            if r not in res.get(part, {}):
                fail(f"resources.{part}.{r} missing")
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    terms = [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])] + anti.get(
        "requiredDuringSchedulingIgnoredDuringExecution", [])
    if not any(t.get("topologyKey") == "kubernetes.io/hostname" and matches(t["labelSelector"]["matchLabels"], pod_labels) for t in terms):
        fail("pod anti-affinity on kubernetes.io/hostname for the guts pods is missing")

    # Services, PDB, NetworkPolicy, ServiceMonitor select the pods and name real ports.
    for svc in [d for _, d in objects if d["kind"] == "Service"]:
        if not matches(svc["spec"]["selector"], pod_labels):
            fail(f"Service {svc['metadata']['name']} does not select the pods")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                fail(f"Service {svc['metadata']['name']} targets unknown port {p['targetPort']}")
    client = one(objects, "Service", "guts")
    if {p["targetPort"] for p in client.get("spec", {}).get("ports", [])} != {"api", "ssh"}:
        fail("the client Service must expose the api and ssh ports only")
    pdb = one(objects, "PodDisruptionBudget")
    if not matches(pdb["spec"]["selector"]["matchLabels"], pod_labels):
        fail("the PodDisruptionBudget does not select the pods")
    np = one(objects, "NetworkPolicy")
    if not matches(np["spec"]["podSelector"]["matchLabels"], pod_labels):
        fail("the NetworkPolicy does not select the pods")
    rules = {}
    for rule in np["spec"]["ingress"]:
        for p in rule.get("ports", []):
            rules[p["port"]] = rule.get("from")
    if set(rules) != {"api", "p2p", "metrics", "ssh"}:
        fail(f"NetworkPolicy ports {sorted(rules)}")
    if rules.get("api") is not None or rules.get("ssh") is not None:
        fail("the api and ssh ports must be open to anyone")
    if rules.get("p2p") != [{"podSelector": {"matchLabels": pod_labels}}]:
        fail(f"p2p must be open to the guts pods only: {rules.get('p2p')}")
    if rules.get("metrics") != [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]:
        fail(f"metrics must be open to the monitoring namespace only: {rules.get('metrics')}")
    sm = one(objects, "ServiceMonitor")
    if not matches(sm["spec"]["selector"]["matchLabels"], headless["metadata"]["labels"]):
        fail("the ServiceMonitor does not select the headless Service")
    if sm["spec"]["endpoints"][0]["port"] not in {p["name"] for p in headless["spec"]["ports"]}:
        fail("the ServiceMonitor's port is not a port of the headless Service")
    dashboard = one(objects, "ConfigMap", "guts-grafana-dashboard")
    board = json.loads(dashboard["data"]["guts.json"])
    ids = [p["id"] for p in board["panels"]]
    if len(ids) != len(set(ids)):
        fail("dashboard panel ids repeat")
    for p in board["panels"]:
        if p["type"] != "row" and not all(t.get("expr") for t in p.get("targets", [])):
            fail(f"dashboard panel {p['title']} has a target without a query")

    # The image agrees: user, ports, volume.
    docker = (Path(k8s).parent / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+)(?::(\d+))?$", docker, re.M)
    if not user or int(user.group(1)) != psc.get("runAsUser"):
        fail(f"Dockerfile USER {user and user.group(0)} != runAsUser {psc.get('runAsUser')}")
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", docker, re.M) for p in line.split()}
    if exposed != set(ports.values()):
        fail(f"Dockerfile EXPOSE {sorted(exposed)} != container ports {sorted(ports.values())}")
    if f'VOLUME ["{config.get("GUTS_DATA_DIR")}"]' not in docker:
        fail("Dockerfile VOLUME is not GUTS_DATA_DIR")
    return config, secret, sts


def check_config(config, secret, sts):
    node = os.environ.get("GUTS_NODE_BIN")
    if not node:
        fail("GUTS_NODE_BIN is not set: cannot run `guts-node config check`")
        return
    base = {"PATH": os.environ.get("PATH", "")}
    base.update({k: v for k, v in config.items()})
    for e in sts["spec"]["template"]["spec"]["containers"][0].get("env", []):
        if "value" in e:
            base[e["name"]] = e["value"].replace("$(POD_NAMESPACE)", "guts")
    good = dict(base, GUTS_ADMIN_TOKEN="a" * 64, GUTS_CLUSTER_SECRET="b" * 64)
    run = subprocess.run([node, "config", "check"], env=good, capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"config check refused the ConfigMap:\n{run.stderr}")
    warned = set(re.findall(r"GUTS_[A-Z0-9_]+", run.stderr))
    if not warned <= PENDING_SETTINGS:
        fail(f"config check warned about {sorted(warned - PENDING_SETTINGS)}:\n{run.stderr}")
    for var in ["GUTS_ADMIN_TOKEN", "GUTS_CLUSTER_SECRET"]:
        env = dict(good)
        env[var] = secret["stringData"][var]
        run = subprocess.run([node, "config", "check"], env=env, capture_output=True, text=True)
        if run.returncode != 2 or var not in run.stderr:
            fail(f"the placeholder {var} must be refused (exit 2 naming it), got {run.returncode}: {run.stderr}")


def check_rules(objects):
    promtool = shutil.which("promtool")
    if not promtool:
        fail("promtool is missing (Debian package prometheus; scripts/test.sh installs it)")
        return
    rule = one(objects, "PrometheusRule")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, f)
    try:
        run = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"promtool check rules:\n{run.stdout}{run.stderr}")
        else:
            print(run.stdout.strip().replace(f.name, "PrometheusRule spec"))
    finally:
        os.unlink(f.name)


def check_kustomize(k8s, objects):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("kubectl not found: `kubectl kustomize` not checked")
        return
    run = subprocess.run([kubectl, "kustomize", str(k8s)], capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"kubectl kustomize failed:\n{run.stderr}")
        return
    built = [("", d) for d in yaml.safe_load_all(run.stdout) if d]
    if len(built) != len(objects):
        fail(f"kustomize built {len(built)} objects from {len(objects)}")
    validate_schemas(built, "kubectl kustomize output: ")
    for _, d in built:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "guts":
            fail(f"kustomize: {d['kind']}/{d['metadata']['name']} has namespace {d['metadata'].get('namespace')}")
    print(f"kubectl kustomize: {len(built)} objects")


# ---- metric names ----

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "Inf", "NaN", "inf", "nan"}


def promql_metrics(expr):
    """The metric names of a PromQL expression: identifiers that are not functions,
    keywords, label names (in matchers and grouping clauses) or durations."""
    s = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", " 0 ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word = m.group(0)
        if s[m.end():].lstrip().startswith("(") or word in KEYWORDS:
            continue
        names.add(word)
    return names


def metric_names(k8s):
    objects = load(k8s)
    names = set()
    for _, d in objects:
        if d["kind"] == "PrometheusRule":
            for group in d["spec"]["groups"]:
                for rule in group["rules"]:
                    names |= promql_metrics(rule["expr"])
        if d["kind"] == "ConfigMap" and "guts.json" in d.get("data", {}):
            board = json.loads(d["data"]["guts.json"])
            for p in board["panels"]:
                for t in p.get("targets", []):
                    names |= promql_metrics(t["expr"])
            for var in board["templating"]["list"]:
                q = var.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                m = re.fullmatch(r"label_values\((\w+),\s*\w+\)", q or "")
                if m:
                    names.add(m.group(1))
                elif var["type"] == "query":
                    fail(f"dashboard variable {var['name']}: unexpected query {q}")
    return sorted(names)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in {"validate", "metric-names"}:
        print(__doc__)
        return 2
    k8s = Path(sys.argv[2])
    if sys.argv[1] == "metric-names":
        names = metric_names(k8s)
        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 1
        print(json.dumps(names))
        return 0
    objects = load(k8s)
    print(f"{len(objects)} objects in {k8s}")
    validate_schemas(objects, "")
    config, secret, sts = check_consistency(k8s, objects)
    check_config(config, secret, sts)
    check_rules(objects)
    check_kustomize(k8s, objects)
    if errors:
        print(f"{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"- {e}", file=sys.stderr)
        return 1
    print("k8s manifests: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
