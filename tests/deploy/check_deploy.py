#!/usr/bin/python3
"""Checks that the Dockerfile and deploy/ agree with each other and with the server.

usage: check_deploy.py SLIMSERVE_BINARY [--root REPO]

Lints deploy/*.yaml and deploy/*.yml with yamllint (deploy/.yamllint), then checks that:
- every --flag of the Deployment's and the Dockerfile's command lines is one `slimserve --help`
  lists, none is given twice, and the flags' values make sense together;
- container ports, Service ports, probe ports and --grpc-port/--metrics-port agree;
- the termination grace period covers the preStop hook and --shutdown-timeout-s, --threads fits the
  CPU limit, the PVC, ConfigMap and HPA references resolve, no manifest names a namespace;
- deploy/prometheus.yml, relabeled as Prometheus would, scrapes the metrics port at /metrics;
- every metric deploy/grafana-dashboard.json queries is one slimserve exports, with known labels;
- the Dockerfile EXPOSEs 8001 and 8002, runs as a non-root USER, and uses exec-form ENTRYPOINT/CMD.
Prints one "ok:" line per check that passed and one "FAIL:" line per problem; exits 1 on any.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    print("FAIL: python3 cannot import yaml: apt-get install python3-yaml (tools/install_deps.sh)")
    sys.exit(1)

# The metrics slimserve exports (server/metrics/), by type.
HISTOGRAMS = {
    "slimserve_request_duration_seconds",
    "slimserve_queue_duration_seconds",
    "slimserve_compute_duration_seconds",
    "slimserve_batch_size",
}
COUNTERS = {
    "slimserve_request_success_total",
    "slimserve_request_failure_total",
    "slimserve_inference_count_total",
    "slimserve_execution_count_total",
    "slimserve_compression_jobs_total",
    "slimserve_variant_cache_lookups_total",
}
GAUGES = {"slimserve_pending_requests", "slimserve_model_load_duration_seconds"} | {
    "slimserve_variant_" + q for q in ("top1_percent", "agreement_percent", "sqnr_db", "size_bytes",
                                       "latency_p50_seconds", "latency_p99_seconds", "throughput")}
SERIES = (COUNTERS | GAUGES | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")})
# Labels of those series, plus the ones Prometheus and deploy/prometheus.yml attach to targets.
LABELS = {"model", "version", "reason", "le", "variant", "state", "result", "instance", "job", "namespace", "pod",
          "__name__"}

EXPECTED_PORTS = {"grpc": 8001, "metrics": 8002}


class Checks:
    def __init__(self):
        self.failures = 0

    def ok(self, message):
        print(f"ok: {message}")

    def fail(self, message):
        self.failures += 1
        print(f"FAIL: {message}")

    def expect(self, problems, message):
        """Reports `message` as passed if `problems` is empty, else each problem."""
        if problems:
            for p in problems:
                self.fail(p)
        else:
            self.ok(message)
        return not problems


# --- slimserve --help -------------------------------------------------------------------------

class Help:
    """The flags `slimserve --help` documents: name -> (takes a value, repeatable, default)."""

    def __init__(self, text):
        self.text = text
        self.names = set(re.findall(r"--([a-z][a-z0-9-]*)", text))
        self.valued, self.repeatable, self.defaults = set(), set(), {}
        for line in text.splitlines():
            m = re.match(r"\s+--([a-z][a-z0-9-]*)(?:\s+([A-Z][A-Z0-9_]*))?(?:\s{2,}(.*))?$", line)
            if not m:
                continue
            name, placeholder, description = m.group(1), m.group(2), m.group(3) or ""
            if placeholder:
                self.valued.add(name)
            if "repeatable" in description:
                self.repeatable.add(name)
            d = re.search(r"\(default ([^;)\s]+)", description)
            if d:
                self.defaults[name] = d.group(1)

    def parse(self, argv, where):
        """argv (without the program) -> ({flag: [values]}, [problems])."""
        flags, problems, i = {}, [], 0
        while i < len(argv):
            token = str(argv[i])
            i += 1
            if not token.startswith("--") or token == "--":
                problems.append(f"{where}: unexpected positional argument '{token}'")
                continue
            name, eq, value = token[2:].partition("=")
            if name not in self.names:
                problems.append(f"{where}: --{name} is not a flag of `slimserve --help`")
            takes_value = name in self.valued or (name not in self.names and not eq and i < len(argv)
                                                  and not str(argv[i]).startswith("--"))
            if takes_value and not eq:
                if i >= len(argv):
                    problems.append(f"{where}: --{name} needs a value")
                    value = None
                else:
                    value = str(argv[i])
                    i += 1
            elif not takes_value and eq:
                problems.append(f"{where}: --{name} takes no value")
            if name in flags and name not in self.repeatable:
                problems.append(f"{where}: --{name} given twice (slimserve refuses to start)")
            flags.setdefault(name, []).append(value)
        return flags, problems


def run_help(binary):
    try:
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        return None, f"cannot run {binary} --help: {e}"
    except subprocess.TimeoutExpired:
        return None, f"{binary} --help did not exit within 60 s"
    if r.returncode != 0:
        return None, f"{binary} --help exited with {r.returncode}: {r.stderr.strip()}"
    if "--model-repository" not in r.stdout:
        return None, f"{binary} --help printed no --model-repository flag on stdout"
    return Help(r.stdout), None


def is_slimserve(program):
    return os.path.basename(str(program)) == "slimserve"


def command_problems(argv, help_, where):
    """Checks one slimserve command line; returns (flags, problems)."""
    if not argv:
        return {}, [f"{where}: empty command"]
    if not is_slimserve(argv[0]):
        return {}, [f"{where}: runs '{argv[0]}', not slimserve"]
    flags, problems = help_.parse(argv[1:], where)
    if "model-repository" not in flags:
        problems.append(f"{where}: no --model-repository (required)")
    mode = (flags.get("model-control-mode") or [help_.defaults.get("model-control-mode", "none")])[-1]
    if mode not in ("none", "explicit"):
        problems.append(f"{where}: --model-control-mode is '{mode}', not none or explicit")
    if "load-model" in flags and mode != "explicit":
        problems.append(f"{where}: --load-model needs --model-control-mode explicit")
    for name in ("grpc-port", "metrics-port", "threads", "max-message-bytes", "max-model-bytes",
                 "shutdown-timeout-s"):
        value = (flags.get(name) or [None])[-1]
        if value is not None and not re.fullmatch(r"\d+", value):
            problems.append(f"{where}: --{name} '{value}' is not a whole number")
    return flags, problems


def flag_int(flags, help_, name):
    value = (flags.get(name) or [help_.defaults.get(name)])[-1]
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- Dockerfile -------------------------------------------------------------------------------

def parse_dockerfile(path):
    """The final stage's instructions, as (KEYWORD, arguments) pairs."""
    instructions, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
        current = ""
    last_from = max((i for i, (k, _) in enumerate(instructions) if k == "FROM"), default=0)
    return instructions[last_from:]


def exec_form(keyword, value, problems):
    try:
        argv = json.loads(value)
    except json.JSONDecodeError:
        argv = None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        problems.append(f"Dockerfile: {keyword} is not in exec form [\"...\"]: under /bin/sh -c, SIGTERM "
                        "would not reach slimserve")
        return []
    return argv


def check_dockerfile(c, root, help_):
    path = root / "Dockerfile"
    if not path.is_file():
        c.fail("no Dockerfile at the repository root")
        return None
    stage = parse_dockerfile(path)
    docker = {"entrypoint": [], "cmd": [], "exposed": set()}

    exposed = set()
    for k, v in stage:
        if k == "EXPOSE":
            for port in v.split():
                port = port.split("/")[0]
                if port.isdigit():
                    exposed.add(int(port))
    docker["exposed"] = exposed
    missing = set(EXPECTED_PORTS.values()) - exposed
    c.expect([f"Dockerfile: the final stage does not EXPOSE {sorted(missing)} (EXPOSEs {sorted(exposed)})"]
             if missing else [], "Dockerfile EXPOSEs 8001 and 8002")

    users = [v for k, v in stage if k == "USER"]
    user = users[-1].split(":")[0] if users else None
    c.expect([] if user and user not in ("root", "0") else
             [f"Dockerfile: the final stage runs as {user or 'root (no USER)'}: set a non-root USER"],
             f"Dockerfile runs as non-root USER {user}")

    problems = []
    entrypoints = [v for k, v in stage if k == "ENTRYPOINT"]
    cmds = [v for k, v in stage if k == "CMD"]
    docker["entrypoint"] = exec_form("ENTRYPOINT", entrypoints[-1], problems) if entrypoints else []
    docker["cmd"] = exec_form("CMD", cmds[-1], problems) if cmds else []
    argv = docker["entrypoint"] + docker["cmd"]
    flags = {}
    if not problems:
        if not docker["entrypoint"] or not is_slimserve(docker["entrypoint"][0]):
            problems.append("Dockerfile: ENTRYPOINT does not run slimserve")
        else:
            flags, p = command_problems(argv, help_, "Dockerfile ENTRYPOINT+CMD")
            problems += p
    c.expect(problems, f"Dockerfile ENTRYPOINT+CMD runs `{' '.join(argv)}`: every flag is in slimserve --help")
    if flags:
        problems = []
        for name, key in (("grpc-port", "grpc"), ("metrics-port", "metrics")):
            port = flag_int(flags, help_, name)
            if port not in exposed:
                problems.append(f"Dockerfile: slimserve listens on --{name} {port} but the image EXPOSEs "
                                f"{sorted(exposed)}")
        c.expect(problems, "Dockerfile's --grpc-port/--metrics-port are the EXPOSEd ports")
        docker["flags"] = flags
    return docker


# --- Kubernetes manifests ---------------------------------------------------------------------

def load_manifests(c, deploy):
    objects = []  # (file name, object)
    problems = []
    for path in sorted(deploy.glob("*.yaml")):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{path.name}: not valid YAML: {e}")
            continue
        for d in docs:
            if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
                problems.append(f"{path.name}: a document without apiVersion and kind")
            else:
                objects.append((path.name, d))
    c.expect(problems, f"deploy/*.yaml parse: {len(objects)} objects "
                       f"({', '.join(sorted(o['kind'] for _, o in objects))})")
    return objects


def run_yamllint(c, deploy):
    files = sorted(deploy.glob("*.yaml")) + sorted(deploy.glob("*.yml"))
    config = deploy / ".yamllint"
    command = None
    if shutil.which("yamllint"):
        command = ["yamllint"]
    else:
        try:
            import yamllint  # noqa: F401
            command = [sys.executable, "-m", "yamllint"]
        except ImportError:
            pass
    if command is None:
        c.fail("yamllint is not installed: apt-get install yamllint (tools/install_deps.sh)")
        return
    if not config.is_file():
        c.fail(f"no yamllint configuration {config}")
        return
    r = subprocess.run(command + ["--strict", "-f", "parsable", "-c", str(config)] + [str(f) for f in files],
                       capture_output=True, text=True)
    if r.returncode != 0:
        c.fail("yamllint found problems:\n" + (r.stdout + r.stderr).rstrip())
    else:
        c.ok(f"yamllint --strict: {', '.join(f.name for f in files)}")


def by_kind(objects, kind):
    return [(f, o) for f, o in objects if o.get("kind") == kind]


def named(objects, kind, name):
    for _, o in by_kind(objects, kind):
        if o.get("metadata", {}).get("name") == name:
            return o
    return None


def cpu_cores(quantity):
    if quantity is None:
        return None
    q = str(quantity)
    try:
        return float(q[:-1]) / 1000 if q.endswith("m") else float(q)
    except ValueError:
        return None


def container_env(c_spec, objects):
    """Environment of a container: envFrom ConfigMaps, then env; returns (env, problems)."""
    env, problems = {}, []
    for source in c_spec.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref is None:
            continue
        cm = named(objects, "ConfigMap", ref.get("name"))
        if cm is None:
            problems.append(f"envFrom: no ConfigMap '{ref.get('name')}' in deploy/")
            continue
        for k, v in (cm.get("data") or {}).items():
            env[source.get("prefix", "") + k] = str(v)
    for e in c_spec.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "configMapKeyRef" in (e.get("valueFrom") or {}):
            ref = e["valueFrom"]["configMapKeyRef"]
            cm = named(objects, "ConfigMap", ref.get("name"))
            if cm is None or ref.get("key") not in (cm.get("data") or {}):
                problems.append(f"env {e['name']}: no key '{ref.get('key')}' in ConfigMap '{ref.get('name')}'")
            else:
                env[e["name"]] = str(cm["data"][ref["key"]])
    return env, problems


def expand(argv, env, where, problems):
    """Kubernetes' $(VAR) expansion in command and args."""
    out = []
    for a in argv:
        def sub(m):
            if m.group(0).startswith("$$"):
                return m.group(0)[1:]
            if m.group(1) not in env:
                problems.append(f"{where}: $({m.group(1)}) is not defined in the container's environment")
                return m.group(0)
            return env[m.group(1)]
        out.append(re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, str(a)))
    return out


def check_kubernetes(c, root, objects, help_, docker):
    deploy = root / "deploy"
    # Namespace-agnostic.
    c.expect([f"{f}: {o['kind']} {o.get('metadata', {}).get('name')} sets metadata.namespace"
              for f, o in objects if "namespace" in (o.get("metadata") or {})],
             "no manifest sets a namespace")

    # Kustomization lists every manifest.
    kustomizations = by_kind(objects, "Kustomization")
    if kustomizations:
        listed = set(kustomizations[0][1].get("resources") or [])
        files = {f for f, o in objects if o.get("kind") != "Kustomization"}
        c.expect([f"kustomization.yaml does not list {f}" for f in sorted(files - listed)] +
                 [f"kustomization.yaml lists {f}, which is not in deploy/" for f in sorted(listed)
                  if not (deploy / f).exists()],
                 "kustomization.yaml lists every manifest")

    deployments = by_kind(objects, "Deployment")
    if len(deployments) != 1:
        c.fail(f"expected one Deployment in deploy/, found {len(deployments)}")
        return None
    dfile, dep = deployments[0]
    pod = dep.get("spec", {}).get("template", {}).get("spec", {})
    containers = [x for x in pod.get("containers") or []
                  if is_slimserve((x.get("command") or docker.get("entrypoint") or [""])[0])]
    if len(containers) != 1:
        c.fail(f"{dfile}: expected one container running slimserve, found {len(containers)}")
        return None
    ctr = containers[0]
    where = f"{dfile} container {ctr.get('name')}"

    # The command line the container runs: Kubernetes' command/args over the image's ENTRYPOINT/CMD.
    problems = []
    env, p = container_env(ctr, objects)
    problems += p
    if ctr.get("command"):
        argv = list(ctr["command"]) + list(ctr.get("args") or [])
    else:
        argv = docker.get("entrypoint", []) + list(ctr["args"] if "args" in ctr else docker.get("cmd", []))
    argv = expand(argv, env, where, problems)
    flags, p = command_problems(argv, help_, where)
    problems += p
    c.expect(problems, f"{dfile} runs `{' '.join(argv)}`: every flag is in slimserve --help, none twice")
    grpc_port = flag_int(flags, help_, "grpc-port")
    metrics_port = flag_int(flags, help_, "metrics-port")
    ports = {"grpc": grpc_port, "metrics": metrics_port}

    # Ports: args, container ports, EXPOSE, probes, Service.
    problems = []
    cports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports") or []}
    for key, flag in (("grpc", "--grpc-port"), ("metrics", "--metrics-port")):
        if not ports[key]:
            problems.append(f"{where}: {flag} is {ports[key]}: Kubernetes needs a fixed port")
        if cports.get(key) != ports[key]:
            problems.append(f"{where}: container port '{key}' is {cports.get(key)} but {flag} is {ports[key]}")
        if ports[key] != EXPECTED_PORTS[key]:
            problems.append(f"{where}: {flag} is {ports[key]}, not the image's and Service's {EXPECTED_PORTS[key]}")
        if docker.get("exposed") and ports[key] not in docker["exposed"]:
            problems.append(f"{where}: {flag} {ports[key]} is not EXPOSEd by the Dockerfile")
    c.expect(problems, f"{dfile}: container ports grpc={cports.get('grpc')} metrics={cports.get('metrics')} "
                       "match --grpc-port/--metrics-port and the Dockerfile's EXPOSE")

    problems = []
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        spec = ctr.get(probe)
        if spec is None:
            if probe != "startupProbe":
                problems.append(f"{where}: no {probe}")
            continue
        if "grpc" not in spec:
            problems.append(f"{where}: {probe} is not a gRPC health probe (grpc: {{port: {grpc_port}}})")
        elif spec["grpc"].get("port") != grpc_port:
            problems.append(f"{where}: {probe} probes port {spec['grpc'].get('port')}, --grpc-port is {grpc_port}")
    c.expect(problems, f"{dfile}: liveness/readiness/startup probes are gRPC health checks on {grpc_port}")

    labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    selector = dep.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    problems = [f"{dfile}: selector {k}={v} does not match the pod template's labels"
                for k, v in selector.items() if labels.get(k) != v]
    services = by_kind(objects, "Service")
    if not services:
        problems.append("no Service in deploy/")
    for sfile, svc in services:
        spec = svc.get("spec") or {}
        for k, v in (spec.get("selector") or {}).items():
            if labels.get(k) != v:
                problems.append(f"{sfile}: selector {k}={v} does not select the Deployment's pods")
        sports = {p.get("name"): p for p in spec.get("ports") or []}
        for key in ("grpc", "metrics"):
            sp = sports.get(key)
            if sp is None:
                problems.append(f"{sfile}: no port named '{key}'")
                continue
            target = sp.get("targetPort", sp.get("port"))
            resolved = cports.get(target) if isinstance(target, str) else target
            if resolved != ports[key]:
                problems.append(f"{sfile}: port '{key}' targets {target} (= {resolved}), the server listens on "
                                f"{ports[key]}")
            if sp.get("port") != EXPECTED_PORTS[key]:
                problems.append(f"{sfile}: port '{key}' is {sp.get('port')}, expected {EXPECTED_PORTS[key]}")
    c.expect(problems, "Service ports grpc/metrics target the container's ports; selectors match the pods")

    annotations = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    if "prometheus.io/port" in annotations:
        c.expect([] if str(annotations["prometheus.io/port"]) == str(metrics_port) else
                 [f"{dfile}: annotation prometheus.io/port is {annotations['prometheus.io/port']}, "
                  f"--metrics-port is {metrics_port}"],
                 f"{dfile}: prometheus.io/port annotation is the metrics port")

    # Graceful shutdown: grace period > preStop sleep + --shutdown-timeout-s.
    shutdown = flag_int(flags, help_, "shutdown-timeout-s")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    pre_stop = 0
    hook = ((ctr.get("lifecycle") or {}).get("preStop") or {})
    if "sleep" in hook:
        pre_stop = int(hook["sleep"].get("seconds", 0))
    elif "exec" in hook:
        command = [str(x) for x in hook["exec"].get("command") or []]
        m = re.search(r"\bsleep\s+(\d+)", " ".join(command))
        pre_stop = int(m.group(1)) if m else 0
    c.expect([] if shutdown is not None and grace > pre_stop + shutdown else
             [f"{dfile}: terminationGracePeriodSeconds {grace} does not exceed preStop {pre_stop} s + "
              f"--shutdown-timeout-s {shutdown}"],
             f"{dfile}: terminationGracePeriodSeconds {grace} > preStop {pre_stop} s + --shutdown-timeout-s {shutdown}")

    # Resources: CPU requests and limits; --threads within the limit.
    resources = ctr.get("resources") or {}
    req = cpu_cores((resources.get("requests") or {}).get("cpu"))
    lim = cpu_cores((resources.get("limits") or {}).get("cpu"))
    threads = flag_int(flags, help_, "threads")
    problems = []
    if req is None or lim is None:
        problems.append(f"{where}: set resources.requests.cpu and resources.limits.cpu")
    elif not threads:
        problems.append(f"{where}: --threads unset or 0 uses every core of the node, not the pod's {lim} CPUs")
    elif threads > lim:
        problems.append(f"{where}: --threads {threads} exceeds the CPU limit {lim}")
    if not (resources.get("limits") or {}).get("memory"):
        problems.append(f"{where}: no memory limit")
    c.expect(problems, f"{dfile}: CPU request {req}, limit {lim}, --threads {threads}")

    # Volumes: the PVC exists and holds --model-repository.
    repository = (flags.get("model-repository") or [None])[-1]
    problems = []
    mounts = {m.get("name"): m.get("mountPath") for m in ctr.get("volumeMounts") or []}
    claims = {v.get("name"): v["persistentVolumeClaim"].get("claimName") for v in pod.get("volumes") or []
              if "persistentVolumeClaim" in v}
    if not claims:
        problems.append(f"{dfile}: no PersistentVolumeClaim volume")
    for volume, claim in claims.items():
        if named(objects, "PersistentVolumeClaim", claim) is None:
            problems.append(f"{dfile}: volume {volume} claims '{claim}', which deploy/ does not define")
    if not any(mounts.get(v) == repository for v in claims):
        problems.append(f"{where}: --model-repository {repository} is not where a PVC is mounted "
                        f"({', '.join(f'{v} at {mounts.get(v)}' for v in claims)})")
    c.expect(problems, f"{dfile}: the PVC is mounted at --model-repository {repository}")

    # HPA: targets this Deployment, on CPU, which needs a CPU request.
    problems = []
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    if not hpas:
        problems.append("no HorizontalPodAutoscaler in deploy/")
    for hfile, hpa in hpas:
        ref = hpa.get("spec", {}).get("scaleTargetRef") or {}
        if ref.get("kind") != "Deployment" or ref.get("name") != dep["metadata"]["name"]:
            problems.append(f"{hfile}: scales {ref.get('kind')} {ref.get('name')}, not Deployment "
                            f"{dep['metadata']['name']}")
        resource_names = [m.get("resource", {}).get("name") for m in hpa.get("spec", {}).get("metrics") or []]
        if "cpu" not in resource_names:
            problems.append(f"{hfile}: does not scale on CPU")
    c.expect(problems, "HorizontalPodAutoscaler scales the Deployment on CPU")
    return {"deployment": dep, "container": ctr, "ports": ports, "labels": labels,
            "annotations": annotations, "cports": cports}


# --- Prometheus -------------------------------------------------------------------------------

def prom_regex(regex):
    return re.compile(r"(?:" + str(regex) + r")\Z", re.S)


def relabel(labels, configs):
    """Prometheus relabeling of one target; None when dropped."""
    labels = dict(labels)
    for rc in configs or []:
        action = rc.get("action", "replace")
        value = rc.get("separator", ";").join(labels.get(s, "") for s in rc.get("source_labels") or [])
        regex = prom_regex(rc.get("regex", "(.*)"))
        m = regex.match(value)
        if action == "keep" and not m:
            return None
        if action == "drop" and m:
            return None
        if action == "replace" and m:
            replacement = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", str(rc.get("replacement", "$1")))
            target = rc.get("target_label")
            if target:
                labels[target] = m.expand(replacement)
        if action == "labelmap":
            for k in list(labels):
                mk = regex.match(k)
                if mk:
                    labels[mk.expand(re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", str(rc.get("replacement", "$1"))))] = labels[k]
    return labels


def sanitize(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def discovered_targets(role, k8s, objects):
    """The targets Kubernetes service discovery offers for the Deployment's pods, as label sets."""
    targets = []
    pod_meta = {"__meta_kubernetes_namespace": "default", "__meta_kubernetes_pod_name": "slimserve-0",
                "__meta_kubernetes_pod_ip": "10.0.0.1"}
    for k, v in k8s["labels"].items():
        pod_meta[f"__meta_kubernetes_pod_label_{sanitize(k)}"] = str(v)
        pod_meta[f"__meta_kubernetes_pod_labelpresent_{sanitize(k)}"] = "true"
    for k, v in k8s["annotations"].items():
        pod_meta[f"__meta_kubernetes_pod_annotation_{sanitize(k)}"] = str(v)
        pod_meta[f"__meta_kubernetes_pod_annotationpresent_{sanitize(k)}"] = "true"
    if role == "pod":
        for name, number in k8s["cports"].items():
            t = dict(pod_meta)
            t.update({"__address__": f"10.0.0.1:{number}", "__meta_kubernetes_pod_container_port_name": name or "",
                      "__meta_kubernetes_pod_container_port_number": str(number),
                      "__meta_kubernetes_pod_container_name": k8s["container"].get("name", "")})
            targets.append(t)
    elif role in ("endpoints", "endpointslice", "service"):
        for _, svc in by_kind(objects, "Service"):
            svc_meta = {"__meta_kubernetes_service_name": svc["metadata"]["name"]}
            for k, v in (svc["metadata"].get("labels") or {}).items():
                svc_meta[f"__meta_kubernetes_service_label_{sanitize(k)}"] = str(v)
            for k, v in (svc["metadata"].get("annotations") or {}).items():
                svc_meta[f"__meta_kubernetes_service_annotation_{sanitize(k)}"] = str(v)
            for sp in svc.get("spec", {}).get("ports") or []:
                t = dict(svc_meta)
                if role == "service":
                    t.update({"__address__": f"{svc['metadata']['name']}.default.svc:{sp.get('port')}",
                              "__meta_kubernetes_service_port_name": sp.get("name", "")})
                else:
                    target = sp.get("targetPort", sp.get("port"))
                    number = k8s["cports"].get(target) if isinstance(target, str) else target
                    t.update(pod_meta)
                    prefix = "endpoint" if role == "endpoints" else "endpointslice"
                    t.update({"__address__": f"10.0.0.1:{number}",
                              f"__meta_kubernetes_{prefix}_port_name": sp.get("name", "")})
                targets.append(t)
    return targets


def check_prometheus(c, root, k8s, objects):
    path = root / "deploy" / "prometheus.yml"
    if not path.is_file():
        c.fail("no deploy/prometheus.yml")
        return
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        c.fail(f"deploy/prometheus.yml: not valid YAML: {e}")
        return
    port = k8s["ports"]["metrics"] if k8s else EXPECTED_PORTS["metrics"]
    problems, summary = [], []
    jobs = config.get("scrape_configs") or []
    if not jobs:
        problems.append("deploy/prometheus.yml: no scrape_configs")
    for job in jobs:
        name = job.get("job_name")
        if job.get("metrics_path", "/metrics") != "/metrics":
            problems.append(f"prometheus.yml job {name}: metrics_path {job['metrics_path']}, slimserve serves /metrics")
        if job.get("scheme", "http") != "http":
            problems.append(f"prometheus.yml job {name}: scheme {job['scheme']}, slimserve serves plain http")
        addresses = []
        for sc in job.get("static_configs") or []:
            for t in sc.get("targets") or []:
                addresses.append(relabel({"__address__": str(t)}, job.get("relabel_configs")))
        for sd in job.get("kubernetes_sd_configs") or []:
            if k8s is None:
                continue
            for t in discovered_targets(sd.get("role"), k8s, objects):
                addresses.append(relabel(t, job.get("relabel_configs")))
        addresses = [a["__address__"] for a in addresses if a is not None]
        if not addresses:
            problems.append(f"prometheus.yml job {name}: scrapes no target of the Deployment (check its relabel "
                            "keep rules against the pod labels and port names)")
        for a in addresses:
            if not a.endswith(f":{port}"):
                problems.append(f"prometheus.yml job {name}: scrapes {a}, not the metrics port {port}")
        summary.append(f"{name} -> {', '.join(sorted(set(addresses)))}")
    c.expect(problems, f"prometheus.yml scrapes :{port}/metrics ({'; '.join(summary)})")


# --- Grafana ----------------------------------------------------------------------------------

def strings(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v, key)
    elif isinstance(node, str):
        yield key, node


def promql_labels(expr):
    expr = re.sub(r"\$\{[^}]*\}", "X", expr)
    labels = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        labels |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    for m in re.finditer(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(1)))
    for m in re.finditer(r"label_values\s*\([^,)]*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", expr):
        labels.add(m.group(1))
    return labels


def check_grafana(c, root):
    path = root / "deploy" / "grafana-dashboard.json"
    try:
        dashboard = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        c.fail(f"deploy/grafana-dashboard.json: {e}")
        return
    problems = []
    used = set()
    for _, s in strings(dashboard):
        for name in re.findall(r"\bslimserve_[A-Za-z0-9_]+", s):
            used.add(name)
            if name not in SERIES:
                hint = " (a histogram: query _bucket, _sum or _count)" if name in HISTOGRAMS else ""
                problems.append(f"grafana-dashboard.json queries {name}, which slimserve does not export{hint}")
    exprs = [s for k, s in strings(dashboard) if k in ("expr", "query", "definition")]
    legends = [s for k, s in strings(dashboard) if k == "legendFormat"]
    for e in exprs:
        for label in promql_labels(e) - LABELS:
            problems.append(f"grafana-dashboard.json: label '{label}' in `{e}` is not one slimserve's metrics carry")
    for legend in legends:
        for label in set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend)) - LABELS:
            problems.append(f"grafana-dashboard.json: legend '{legend}' uses unknown label '{label}'")
    c.expect(problems, f"grafana-dashboard.json queries only slimserve's metrics and labels ({len(used)} series)")

    joined = "\n".join(exprs)
    wanted = [
        ("request rate", r"rate\(slimserve_request_(success|failure)_total|rate\(slimserve_request_duration_seconds_count"),
        ("p50 latency", r"histogram_quantile\(0\.5,[^\n]*slimserve_request_duration_seconds_bucket"),
        ("p99 latency", r"histogram_quantile\(0\.99,[^\n]*slimserve_request_duration_seconds_bucket"),
        ("queue time", r"slimserve_queue_duration_seconds_"),
        ("compute time", r"slimserve_compute_duration_seconds_"),
        ("failures by reason", r"by \([^)]*\breason\b[^)]*\) \(rate\(slimserve_request_failure_total"),
        ("batch size distribution", r"slimserve_batch_size_bucket"),
        ("pending requests", r"slimserve_pending_requests"),
        ("model load time", r"slimserve_model_load_duration_seconds"),
    ]
    missing = [what for what, pattern in wanted if not re.search(pattern, joined)]
    c.expect([f"grafana-dashboard.json has no {what} panel" for what in missing],
             "grafana-dashboard.json has request rate, p50/p99 latency, queue vs compute, failures by reason, "
             "batch size, pending requests and model load time")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary", help="the slimserve binary (its --help lists the valid flags)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2],
                        help="the repository (default: this script's)")
    options = parser.parse_args()
    root = options.root.resolve()
    c = Checks()

    help_, error = run_help(options.binary)
    if help_ is None:
        c.fail(error)
        return 1
    c.ok(f"{options.binary} --help lists {len(help_.names)} flags")

    run_yamllint(c, root / "deploy")
    docker = check_dockerfile(c, root, help_) or {}
    objects = load_manifests(c, root / "deploy")
    k8s = check_kubernetes(c, root, objects, help_, docker)
    check_prometheus(c, root, k8s, objects)
    check_grafana(c, root)

    if c.failures:
        print(f"check_deploy: {c.failures} problem(s)")
        return 1
    print("check_deploy: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
