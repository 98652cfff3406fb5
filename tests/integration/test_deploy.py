"""deploy/: the container image (deploy/Dockerfile) and the Kubernetes manifests
(deploy/kubernetes, kustomize), validated offline: no Docker engine, no cluster.

Image (what can be checked without a Docker engine):
  - deploy/Dockerfile is parsed instruction by instruction;
  - the build stage is re-enacted on this Debian 12 machine: the build context is
    assembled through /.dockerignore, the stage's COPY instructions are replayed into a
    scratch root and its non-apt RUN steps run there, so the binary analysed below is the
    one the image would contain (Release, no sanitizers), built from exactly the files the
    context admits;
  - the runtime stage must install exactly the packages owning the libraries the binary
    links directly (readelf NEEDED -> ldd path -> dpkg -S), less those of the
    debian:12-slim base, plus declared extras; and every library the loader resolves
    (ldd) must come from those packages or their dependencies (dpkg Depends closure);
  - USER, EXPOSE, ENTRYPOINT, CMD and the copied configuration agree with each other and
    with the binary; the HEALTHCHECK command is run against the real bridge.
Not checked here: that the images pull and the apt steps succeed, the layer contents
beyond what COPY puts there, the base images' package sets (approximated by this
machine's Essential/required packages and their dependencies).

Kubernetes: a small kustomize resolver below (resources, configMapGenerator,
secretGenerator, images, JSON-6902 patches, name references) renders deploy/kubernetes
and its legacy-sidecar overlay; when kubectl is installed, `kubectl kustomize` renders
them too, its output must equal the resolver's, and every check runs on both. The checks
follow the issue: the native sidecar, probes, resources, the hardened securityContext,
volume mounts, the ConfigMap's configuration validated by the real binary, the Secret,
the Service. Not checked here: the API server's own validation and admission, scheduling,
image pulls, and the pod actually running.
"""
import base64
import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from conftest import SOURCE_DIR

DEPLOY = os.path.join(SOURCE_DIR, "deploy")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DOCKERIGNORE = os.path.join(SOURCE_DIR, ".dockerignore")
K8S = os.path.join(DEPLOY, "kubernetes")
VARIANTS = {"native": K8S, "legacy": os.path.join(K8S, "overlays", "legacy-sidecar")}
EX_CONFIG = 78
BRIDGE = "takhin-bridge"

# Runtime-stage packages that own no library of the binary, and why they are there.
RUNTIME_EXTRAS = {
    "curl": "the HTTP client of the HEALTHCHECK (the binary has none)",
    "ca-certificates": "trust store for TLS to Kafka without an explicit ssl.ca.location",
}


def read(path):
    with open(path) as f:
        return f.read()


def cmake_project_version():
    m = re.search(r"project\(takhin-bridge\s+VERSION\s+(\S+)",
                  read(os.path.join(SOURCE_DIR, "CMakeLists.txt")))
    assert m, "project version not found in CMakeLists.txt"
    return m.group(1)


# =====================================================================================
# Dockerfile parsing
# =====================================================================================
class Instr:
    def __init__(self, cmd, args, line):
        self.cmd, self.args, self.line = cmd, args, line

    def exec_form(self):
        """The JSON (exec) form as a list, or None for the shell form."""
        a = self.args.strip()
        return json.loads(a) if a.startswith("[") else None

    def __repr__(self):
        return f"{self.cmd} {self.args} (line {self.line})"


def parse_dockerfile(text):
    """Instructions of a Dockerfile: backslash continuations joined, comments and parser
    directives dropped (also comment lines inside a continuation, as Docker does)."""
    instrs, buf, start = [], "", None
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if start is None:
            start = lineno
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        cmd, _, rest = buf.strip().partition(" ")
        instrs.append(Instr(cmd.upper(), rest.strip(), start))
        buf, start = "", None
    assert not buf, "Dockerfile ends inside a line continuation"
    return instrs


class Stage:
    def __init__(self, image, name, instrs):
        self.image, self.name, self.instrs = image, name, instrs

    def all(self, cmd):
        return [i for i in self.instrs if i.cmd == cmd]

    def one(self, cmd):
        found = self.all(cmd)
        assert len(found) == 1, f"stage {self.name}: expected one {cmd}, found {found}"
        return found[0]

    def apt_packages(self):
        pkgs = []
        for run in self.all("RUN"):
            for seg in re.split(r"&&|\|\||;|\|", run.args):
                toks = shlex.split(seg)
                if "apt-get" in toks and "install" in toks:
                    rest = toks[toks.index("install") + 1:]
                    pkgs += [t for t in rest if not t.startswith("-")]
        return pkgs


def dockerfile_stages():
    stages = []
    for ins in parse_dockerfile(read(DOCKERFILE)):
        if ins.cmd == "FROM":
            toks = [t for t in ins.args.split() if not t.startswith("--")]
            name = toks[2] if len(toks) == 3 and toks[1].lower() == "as" else None
            stages.append(Stage(toks[0], name, []))
        else:
            assert stages, f"{ins} before the first FROM"
            stages[-1].instrs.append(ins)
    return stages


def parse_copy(ins):
    """-> (flags dict, [sources], dest)"""
    form = ins.exec_form()
    toks = form if form is not None else shlex.split(ins.args)
    flags = {}
    while toks and toks[0].startswith("--"):
        k, _, v = toks.pop(0)[2:].partition("=")
        flags[k] = v
    assert len(toks) >= 2, f"{ins}: no source or destination"
    return flags, toks[:-1], toks[-1]


def parse_user(ins):
    user, _, group = ins.args.partition(":")
    return user, group


def parse_healthcheck(ins):
    """-> (options dict, argv) for `HEALTHCHECK [--opt=v ...] CMD [exec form]`."""
    opts, rest = {}, ins.args
    while rest.startswith("--"):
        tok, _, rest = rest.partition(" ")
        k, _, v = tok[2:].partition("=")
        opts[k] = v
        rest = rest.strip()
    kw, _, cmd = rest.partition(" ")
    assert kw.upper() == "CMD", f"{ins}: not a CMD healthcheck"
    argv = Instr("CMD", cmd, ins.line).exec_form()
    assert argv, f"{ins}: use the exec form (no shell needed)"
    return opts, argv


# =====================================================================================
# .dockerignore and the build context
# =====================================================================================
def dockerignore_patterns():
    pats = []
    for line in read(DOCKERIGNORE).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = os.path.normpath(line[1:] if neg else line).lstrip("/")
        pats.append((neg, pat))
    return pats


def _glob_re(pat):
    """Docker's pattern syntax: `*` and `?` stay within one path element, `**` spans."""
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**", i):
            out += ".*"
            i += 2
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    return re.compile(out + r"\Z")


def ignored(rel, pats):
    """Docker's rule: the last pattern matching the path or one of its parent
    directories decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for neg, pat in pats:
        rx = _glob_re(pat)
        if any(rx.match(p) for p in prefixes):
            verdict = not neg
    return verdict


def build_context(dest):
    """Copy into @dest the files of the source tree that /.dockerignore admits."""
    pats = dockerignore_patterns()
    negations = [p for neg, p in pats if neg]
    admitted = []
    for root, dirs, files in os.walk(SOURCE_DIR):
        rel_root = os.path.relpath(root, SOURCE_DIR)
        rel_root = "" if rel_root == "." else rel_root
        keep = []
        for d in dirs:
            rel = os.path.join(rel_root, d)
            # Descend only where something could still be admitted.
            if d == ".git" or (ignored(rel, pats) and not any(
                    n == rel or n.startswith(rel + "/") for n in negations)):
                continue
            keep.append(d)
        dirs[:] = keep
        for f in files:
            rel = os.path.join(rel_root, f)
            if not ignored(rel, pats):
                os.makedirs(os.path.join(dest, rel_root), exist_ok=True)
                shutil.copy2(os.path.join(root, f), os.path.join(dest, rel), follow_symlinks=False)
                admitted.append(rel)
    return admitted


def replay_copy(ins, src_root, root, workdir):
    _flags, sources, dest = parse_copy(ins)
    target = os.path.join(root, os.path.join(workdir, dest).lstrip("/"))
    into_dir = dest.endswith("/") or len(sources) > 1 or os.path.isdir(target)
    for s in sources:
        src = os.path.join(src_root, s.lstrip("/"))
        assert os.path.exists(src), f"{ins}: '{s}' is not in the build context / stage"
        if os.path.isdir(src):
            shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
        else:
            dst = os.path.join(target, os.path.basename(s)) if into_dir else target
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """Re-enact the Dockerfile on this machine: the context through .dockerignore, then
    for each stage WORKDIR/COPY replayed into a scratch root and the build stage's
    non-apt RUN steps executed there (apt steps are checked, not run)."""
    base = tmp_path_factory.mktemp("image")
    ctx = str(base / "context")
    os.makedirs(ctx)
    admitted = build_context(ctx)
    stages = dockerfile_stages()
    roots = {}
    for n, st in enumerate(stages):
        root = str(base / f"stage{n}")
        os.makedirs(root)
        workdir = "/"
        for ins in st.instrs:
            if ins.cmd == "WORKDIR":
                workdir = os.path.join(workdir, ins.args)
                os.makedirs(os.path.join(root, workdir.lstrip("/")), exist_ok=True)
            elif ins.cmd == "COPY":
                flags, _, _ = parse_copy(ins)
                src_root = roots[flags["from"]] if "from" in flags else ctx
                replay_copy(ins, src_root, root, workdir)
            elif ins.cmd == "RUN" and n == 0 and "apt-get" not in ins.args:
                r = subprocess.run(["/bin/sh", "-c", ins.args],
                                   cwd=os.path.join(root, workdir.lstrip("/")),
                                   capture_output=True, text=True, timeout=1800)
                assert r.returncode == 0, \
                    f"{ins} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        roots[st.name or str(n)] = root
        roots[str(n)] = root
    return {"stages": stages, "roots": roots, "admitted": admitted, "context": ctx}


def image_file(image, stage_index, path):
    return os.path.join(image["roots"][str(stage_index)], path.lstrip("/"))


def run_image_binary(image, *args):
    """The binary the image would contain (built from the context by the fixture)."""
    return subprocess.run([image_file(image, 1, "/usr/bin/takhin-bridge"), *args],
                          capture_output=True, text=True, timeout=60)


# =====================================================================================
# ELF and dpkg
# =====================================================================================
def needed_sonames(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def ldd_paths(binary):
    """soname (or path) -> resolved path of every library the loader maps."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (/\S+) \(0x", line)
        if m:
            libs[m.group(1)] = m.group(2)
            continue
        m = re.match(r"(/\S+) \(0x", line)  # the dynamic loader
        if m:
            libs[m.group(1)] = m.group(1)
        assert "not found" not in line, f"ldd: {line}"
    return libs


def dpkg_owners(path):
    """Packages owning @path; tries the /lib <-> /usr/lib spellings (merged /usr)."""
    cands = []
    for p in (path, os.path.realpath(path)):
        cands.append(p)
        if p.startswith("/usr/lib/"):
            cands.append(p[len("/usr"):])
        elif p.startswith("/lib"):
            cands.append("/usr" + p)
    for c in dict.fromkeys(cands):
        r = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if r.returncode != 0:
            continue
        for line in r.stdout.splitlines():
            if line.startswith("diversion"):
                continue
            owners, _, p = line.rpartition(": ")
            if p == c:
                return {o.strip().split(":")[0] for o in owners.split(",")}
    raise AssertionError(f"no installed Debian package owns {path}")


@pytest.fixture(scope="module")
def dpkg():
    fmt = "${Package}\t${db:Status-Abbrev}\t${Priority}\t${Essential}\t" \
          "${Pre-Depends}\t${Depends}\t${Provides}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True,
                         check=True).stdout
    db, provides = {}, {}

    def names(field):
        groups = []
        for group in filter(None, (g.strip() for g in field.split(","))):
            alts = [re.sub(r"\s*\(.*?\)|:\S+", "", a).strip() for a in group.split("|")]
            groups.append([a for a in alts if a])
        return groups

    for line in out.splitlines():
        pkg, status, prio, ess, pre, dep, prov = (line.split("\t") + [""] * 7)[:7]
        if not status.startswith("ii"):
            continue
        db[pkg] = {"priority": prio, "essential": ess == "yes",
                   "depends": names(pre) + names(dep)}
        for group in names(prov):
            for v in group:
                provides.setdefault(v, set()).add(pkg)

    def closure(pkgs):
        seen, todo = set(), list(pkgs)
        while todo:
            p = todo.pop()
            if p in seen or p not in db:
                continue
            seen.add(p)
            for group in db[p]["depends"]:
                for alt in group:
                    todo += [alt] if alt in db else sorted(provides.get(alt, ()))
        return seen

    # debian:12-slim is a minbase system: the Essential and Priority: required packages
    # and their dependencies. Approximated with this machine's package database.
    base = closure(p for p, d in db.items() if d["essential"] or d["priority"] == "required")
    return {"db": db, "closure": closure, "base": base}


# =====================================================================================
# Image tests
# =====================================================================================
def test_dockerfile_has_a_debian12_build_stage_and_a_slim_runtime_stage():
    stages = dockerfile_stages()
    assert len(stages) == 2, [s.image for s in stages]
    build, runtime = stages
    assert re.fullmatch(r"debian:(12|bookworm)(@sha256:[0-9a-f]{64})?", build.image)
    assert re.fullmatch(r"debian:(12|bookworm)-slim(@sha256:[0-9a-f]{64})?", runtime.image)
    assert build.name, "the build stage is named, and the runtime stage copies from it"
    froms = {parse_copy(c)[0].get("from") for c in runtime.all("COPY")} - {None}
    assert froms == {build.name}
    # Nothing of the build toolchain reaches the runtime stage.
    assert not [p for p in runtime.apt_packages() if p.endswith("-dev")
                or p in ("build-essential", "cmake", "pkg-config", "gcc")]
    for st in stages:
        assert not st.all("ADD"), "COPY, not ADD"


def test_build_stage_installs_what_cmake_requires(dpkg):
    build = dockerfile_stages()[0]
    pkgs = set(build.apt_packages())
    assert {"build-essential", "cmake", "pkg-config"} <= pkgs
    # Every pkg-config module CMakeLists.txt requires comes from a package the stage
    # installs: the package owning the module's .pc file here.
    cml = read(os.path.join(SOURCE_DIR, "CMakeLists.txt"))
    modules = re.findall(r"pkg_check_modules\(\s*\w+\s+REQUIRED\s+IMPORTED_TARGET\s+([\w.+-]+?)"
                         r"(?:[<>=]=?[\d.]+)?\s*\)", cml)
    assert sorted(modules) == ["json-c", "libconfig", "libwebsockets", "rdkafka"]
    for mod in modules:
        pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True,
                               text=True, check=True).stdout.strip()
        owners = dpkg_owners(os.path.join(pcdir, mod + ".pc"))
        assert owners & pkgs, f"{mod}.pc is owned by {owners}, not installed by the build stage"
    # Release build of the daemon only, without the test suite.
    runs = " ".join(r.args for r in build.all("RUN"))
    assert "-DCMAKE_BUILD_TYPE=Release" in runs and "-DTB_TESTS=OFF" in runs


def test_dockerignore_admits_exactly_the_build_inputs(image):
    pats = dockerignore_patterns()
    top = {p.split("/")[0] for p in image["admitted"]}
    assert top == {"CMakeLists.txt", "include", "src", "etc"}, top
    for rel in (".git/config", "build/takhin-bridge", "build-test/default/CMakeCache.txt",
                "tests/integration/conftest.py", "docs/operations.md", "deploy/Dockerfile"):
        assert ignored(rel, pats), rel
    assert not ignored("src/core/log.c", pats) and not ignored("etc/takhin-bridge.cfg", pats)


def test_build_stage_builds_the_daemon_from_the_context(image):
    build_root = image["roots"]["0"]
    runtime = image["stages"][1]
    copied = [parse_copy(c) for c in runtime.all("COPY") if "from" in parse_copy(c)[0]]
    assert len(copied) == 1
    _, [src], dest = copied[0]
    binary = os.path.join(build_root, src.lstrip("/"))
    assert os.access(binary, os.X_OK), f"the build stage produced no {src}"
    assert os.path.isfile(image_file(image, 1, dest))
    r = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"takhin-bridge {cmake_project_version()}")
    # A Release build: hardened, no sanitizer runtime.
    assert not [s for s in needed_sonames(binary) if "san" in s]
    assert "BIND_NOW" in subprocess.run(["readelf", "-d", binary], capture_output=True,
                                        text=True).stdout


def test_runtime_stage_installs_the_packages_of_the_linked_libraries(image, dpkg):
    runtime = dockerfile_stages()[1]
    installed = runtime.apt_packages()
    assert len(installed) == len(set(installed)), installed
    installed = set(installed)
    binary = image_file(image, 1, "/usr/bin/takhin-bridge")
    paths = ldd_paths(binary)
    direct = {}
    for soname in needed_sonames(binary):
        assert soname in paths, f"{soname} not resolved by ldd"
        direct[soname] = dpkg_owners(paths[soname])
    owners = set().union(*direct.values())
    # What the binary itself links and the base image lacks must be installed ...
    required = owners - dpkg["base"]
    assert required == {"librdkafka1", "libwebsockets17", "libjson-c5", "libconfig9"}, direct
    assert required <= installed, f"missing: {required - installed}"
    # ... and nothing else but the declared extras.
    assert installed - owners == set(RUNTIME_EXTRAS), \
        f"unexplained: {installed - owners - set(RUNTIME_EXTRAS)}"
    # Every library the loader maps (transitive ones too) comes from those packages,
    # their dependencies or the base image.
    have = dpkg["closure"](installed | dpkg["base"])
    for soname, path in paths.items():
        assert dpkg_owners(path) & have, f"{soname} ({path}) would be missing in the image"


def test_runtime_stage_user_port_entrypoint_and_configuration(image):
    runtime = dockerfile_stages()[1]
    user, group = parse_user(runtime.one("USER"))
    assert user.isdigit() and int(user) != 0, "numeric non-root USER (runAsNonRoot needs it)"
    assert group.isdigit() and int(group) != 0
    # ENTRYPOINT is the copied binary; CMD names the copied configuration.
    [entry] = runtime.one("ENTRYPOINT").exec_form()
    assert os.access(image_file(image, 1, entry), os.X_OK)
    cmd = runtime.one("CMD").exec_form()
    assert cmd[0] == "-c" and len(cmd) == 2
    cfg = image_file(image, 1, cmd[1])
    assert read(cfg) == read(os.path.join(SOURCE_DIR, "etc", "takhin-bridge.cfg"))
    r = run_image_binary(image, "-t", "-c", cfg)
    assert r.returncode == 0, r.stderr
    # EXPOSE is the port that configuration listens on (all interfaces), as the bridge
    # itself reports it.
    dump = run_image_binary(image, "-T", "-c", cfg).stdout
    assert runtime.one("EXPOSE").args == effective(dump, "server", "port") == "8080"
    assert effective(dump, "server", "address") == '"0.0.0.0"'
    assert effective(dump, "kafka", "bootstrap_servers") == '"127.0.0.1:9092"'


def effective(dump, group, key):
    """A value from `takhin-bridge -T` output."""
    m = re.search(r"^%s = \{\n(.*?)^\};" % group, dump, re.M | re.S)
    assert m, f"group {group} not in -T output"
    m = re.search(r"^\s+%s = (.*);$" % key, m.group(1), re.M)
    assert m, f"{group}.{key} not in -T output"
    return m.group(1)


def test_healthcheck_runs_against_the_real_bridge(image, dpkg, bridge):
    runtime = dockerfile_stages()[1]
    opts, argv = parse_healthcheck(runtime.one("HEALTHCHECK"))
    assert set(opts) >= {"interval", "timeout", "retries"}
    # The client is in the image: a package the runtime stage installs (or its base).
    assert argv[0].startswith("/")
    assert dpkg_owners(argv[0]) & (set(runtime.apt_packages()) | dpkg["base"])
    [url] = [a for a in argv if a.startswith("http://")]
    assert url == "http://127.0.0.1:%s/healthz" % runtime.one("EXPOSE").args
    # Run the command itself, pointed at a real bridge (no Kafka: /healthz is still 200,
    # /readyz 503), then at a stopped one.
    b = bridge()

    def check(path):
        args = [a.replace("127.0.0.1:8080/healthz", f"127.0.0.1:{b.port}{path}") for a in argv]
        return subprocess.run(args, capture_output=True, text=True, timeout=30).returncode

    assert check("/healthz") == 0
    assert check("/readyz") != 0, "the healthcheck must fail on an HTTP error status"
    assert b.stop() == 0
    assert check("/healthz") != 0


# =====================================================================================
# A small kustomize
# =====================================================================================
def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def _pointer(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _walk(doc, parts):
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def json_patch(doc, ops):
    """RFC 6902 on a parsed document (the ops kustomize accepts)."""
    def remove(path):
        *parent, last = _pointer(path)
        holder = _walk(doc, parent)
        return holder.pop(int(last)) if isinstance(holder, list) else holder.pop(last)

    def add(path, value):
        *parent, last = _pointer(path)
        holder = _walk(doc, parent)
        if isinstance(holder, list):
            holder.insert(len(holder) if last == "-" else int(last), value)
        else:
            holder[last] = value

    for op in ops:
        kind = op["op"]
        if kind == "test":
            got = _walk(doc, _pointer(op["path"]))
            assert got == op["value"], f"patch test failed at {op['path']}: {got!r}"
        elif kind == "remove":
            remove(op["path"])
        elif kind == "add":
            add(op["path"], copy.deepcopy(op["value"]))
        elif kind == "replace":
            remove(op["path"])
            add(op["path"], copy.deepcopy(op["value"]))
        elif kind == "move":
            add(op["path"], remove(op["from"]))
        elif kind == "copy":
            add(op["path"], copy.deepcopy(_walk(doc, _pointer(op["from"]))))
        else:
            raise AssertionError(f"unknown JSON patch op {kind}")


def pod_specs(doc):
    spec = doc.get("spec", {})
    if doc["kind"] == "Pod":
        return [spec]
    if "template" in spec:
        return [spec["template"]["spec"]]
    return []


def all_containers(pod):
    return pod.get("initContainers", []) + pod.get("containers", [])


def kustomize_build(directory):
    """Renders a kustomization: resources (files or directories), configMapGenerator and
    secretGenerator (files= and literals, hash-suffixed names), images, patches (JSON 6902
    with a target), then the generated names in pod volumes/env are updated. Anything
    else in a kustomization fails the test, so the resolver cannot silently diverge."""
    k = load_yaml_docs(os.path.join(directory, "kustomization.yaml"))[0]
    known = {"apiVersion", "kind", "resources", "configMapGenerator", "secretGenerator",
             "images", "patches"}
    assert set(k) <= known, f"{directory}: resolver lacks {set(k) - known}"
    docs, renames = [], {}
    for res in k.get("resources", []):
        p = os.path.join(directory, res)
        docs += kustomize_build(p) if os.path.isdir(p) else load_yaml_docs(p)

    def generate(kind, gen, encode):
        data = {}
        for f in gen.get("files", []):
            key, _, path = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
            with open(os.path.join(directory, path), "rb") as fh:
                data[key] = encode(fh.read())
        for lit in gen.get("literals", []):
            key, _, value = lit.partition("=")
            data[key] = encode(value.encode())
        obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]},
               "data": data}
        if kind == "Secret":
            obj["type"] = gen.get("type", "Opaque")
        digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
        obj["metadata"]["name"] = f"{gen['name']}-{digest[:10]}"
        renames[(kind, gen["name"])] = obj["metadata"]["name"]
        docs.append(obj)

    for gen in k.get("configMapGenerator", []):
        generate("ConfigMap", gen, lambda b: b.decode())
    for gen in k.get("secretGenerator", []):
        generate("Secret", gen, lambda b: base64.b64encode(b).decode())
    for img in k.get("images", []):
        for doc in docs:
            for pod in pod_specs(doc):
                for c in all_containers(pod):
                    name = re.split(r"[:@]", c["image"])[0]
                    if name == img["name"]:
                        c["image"] = img.get("newName", name) + (
                            ":" + str(img["newTag"]) if "newTag" in img else "")
    for patch in k.get("patches", []):
        ops = load_yaml_docs(os.path.join(directory, patch["path"]))[0]
        assert isinstance(ops, list), "resolver: only JSON 6902 patches"
        t = patch["target"]
        hits = [d for d in docs if d["kind"] == t["kind"] and d["metadata"]["name"] == t["name"]
                and d["apiVersion"] == "/".join(filter(None, (t.get("group"), t.get("version"))))]
        assert len(hits) == 1, f"patch target {t} matches {len(hits)} objects"
        json_patch(hits[0], ops)
    for doc in docs:
        for pod in pod_specs(doc):
            for v in pod.get("volumes", []):
                if "configMap" in v:
                    v["configMap"]["name"] = renames.get(("ConfigMap", v["configMap"]["name"]),
                                                         v["configMap"]["name"])
                if "secret" in v:
                    v["secret"]["secretName"] = renames.get(
                        ("Secret", v["secret"]["secretName"]), v["secret"]["secretName"])
            for c in all_containers(pod):
                assert "envFrom" not in c and not any(
                    "configMapKeyRef" in e.get("valueFrom", {}) or "secretKeyRef" in
                    e.get("valueFrom", {}) for e in c.get("env", [])), \
                    "resolver: references from env are not renamed"
    return docs


def kubectl_kustomize(directory):
    r = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None]


def have_kubectl():
    if not shutil.which("kubectl"):
        return False
    return subprocess.run(["kubectl", "kustomize", "--help"], capture_output=True,
                          timeout=60).returncode == 0


RENDERERS = ["resolver", "kubectl"]


@pytest.fixture(scope="module", params=[(v, r) for v in VARIANTS for r in RENDERERS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def rendered(request):
    variant, renderer = request.param
    if renderer == "kubectl":
        if not have_kubectl():
            pytest.skip("kubectl is not installed: rendered by the built-in resolver only")
        docs = kubectl_kustomize(VARIANTS[variant])
    else:
        docs = kustomize_build(VARIANTS[variant])
    return variant, docs


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def generated(docs, kind, base_name):
    hits = [d for d in by_kind(docs, kind)
            if re.fullmatch(re.escape(base_name) + r"-[a-z0-9]{10}", d["metadata"]["name"])]
    assert len(hits) == 1, f"{kind} {base_name}-<hash>: {len(hits)} found"
    return hits[0]


def statefulset(docs):
    [sts] = by_kind(docs, "StatefulSet")
    return sts


def bridge_container(docs, variant):
    pod = statefulset(docs)["spec"]["template"]["spec"]
    inits = [c for c in pod.get("initContainers", []) if c["name"] == BRIDGE]
    mains = [c for c in pod.get("containers", []) if c["name"] == BRIDGE]
    if variant == "native":
        assert len(inits) == 1 and not mains, "native sidecar: an init container"
        return inits[0]
    assert len(mains) == 1 and not inits, "legacy sidecar: an ordinary container"
    return mains[0]


def quantity(q):
    """Kubernetes quantity -> float (cores or bytes)."""
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(q))
    assert m, f"bad quantity {q!r}"
    mult = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return float(m.group(1)) * mult


def mount_for(container, pod, path):
    """(volume, mount) of the container's mount holding @path."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/") and (best is None or len(mp) > len(best[1]["mountPath"])):
            [vol] = [v for v in pod["volumes"] if v["name"] == m["name"]]
            best = (vol, m)
    assert best, f"{path} is on no volume of {container['name']}"
    return best


# =====================================================================================
# Kubernetes tests
# =====================================================================================
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def test_every_manifest_file_parses():
    files = []
    for root, _dirs, names in os.walk(K8S):
        files += [os.path.join(root, n) for n in names if n.endswith((".yaml", ".yml"))]
    assert {os.path.relpath(f, K8S) for f in files} >= {
        "kustomization.yaml", "base/kustomization.yaml", "base/statefulset.yaml",
        "base/services.yaml", "overlays/legacy-sidecar/kustomization.yaml",
        "overlays/legacy-sidecar/sidecar-as-container.yaml"}
    for path in files:
        docs = load_yaml_docs(path)
        assert docs, f"{path}: empty"
        for doc in docs:
            if isinstance(doc, list):  # a JSON 6902 patch
                assert all({"op", "path"} <= set(op) for op in doc), path
                continue
            assert isinstance(doc, dict), path
            if doc.get("kind") == "Kustomization":
                assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1", path
                continue
            assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)
            assert DNS1123.fullmatch(doc["metadata"]["name"]), path


@pytest.mark.skipif(not have_kubectl(), reason="kubectl is not installed")
@pytest.mark.parametrize("variant", VARIANTS)
def test_resolver_renders_what_kustomize_renders(variant):
    """The built-in resolver against the real kustomize (kubectl's), hash suffixes aside."""
    def normal(docs):
        out = []
        for d in docs:
            d = copy.deepcopy(d)
            if d["kind"] == "Secret":
                d["data"] = {k: base64.b64decode(v) for k, v in d["data"].items()}
            text = re.sub(r"(takhin-bridge-(?:config|keys))-[a-z0-9]{10}", r"\1-HASH",
                          json.dumps(d, sort_keys=True, default=repr))
            out.append(text)
        return sorted(out)
    assert normal(kustomize_build(VARIANTS[variant])) == normal(
        kubectl_kustomize(VARIANTS[variant]))


def test_rendered_objects(rendered):
    _, docs = rendered
    for d in docs:
        assert d["apiVersion"] and d["kind"] and DNS1123.fullmatch(d["metadata"]["name"])
    names = sorted((d["kind"], re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"])
                    if d["kind"] in ("ConfigMap", "Secret") else d["metadata"]["name"])
                   for d in docs)
    assert names == [("ConfigMap", "takhin-bridge-config"), ("Secret", "takhin-bridge-keys"),
                     ("Service", "kafka-bootstrap"), ("Service", "kafka-headless"),
                     ("Service", "takhin-bridge"), ("StatefulSet", "kafka")]
    apis = {d["kind"]: d["apiVersion"] for d in docs}
    assert apis == {"ConfigMap": "v1", "Secret": "v1", "Service": "v1",
                    "StatefulSet": "apps/v1"}


def test_statefulset_runs_the_bridge_as_a_sidecar(rendered):
    variant, docs = rendered
    sts = statefulset(docs)
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    bridge = bridge_container(docs, variant)
    if variant == "native":
        assert bridge["restartPolicy"] == "Always"
        assert pod["initContainers"][0]["name"] == BRIDGE  # the legacy patch relies on it
    else:
        assert "restartPolicy" not in bridge
        assert pod.get("initContainers", []) == []
    [kafka] = [c for c in pod["containers"] if c["name"] == "kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert bridge["image"] == f"takhin-bridge:{cmake_project_version()}"
    # KAFKA_* variables are broker settings for the apache/kafka image: no service links.
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    # Container names unique; every port name unique in the pod.
    names = [c["name"] for c in all_containers(pod)]
    assert len(names) == len(set(names))
    ports = [p["name"] for c in all_containers(pod) for p in c.get("ports", [])]
    assert len(ports) == len(set(ports))


def test_bridge_probes_resources_and_security(rendered):
    variant, docs = rendered
    pod = statefulset(docs)["spec"]["template"]["spec"]
    bridge = bridge_container(docs, variant)
    [http] = [p for p in bridge["ports"] if p["name"] == "http"]
    assert http["containerPort"] == 8080 and http.get("protocol", "TCP") == "TCP"
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = bridge[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in ("http", 8080)
        assert bridge[probe]["timeoutSeconds"] < bridge[probe]["periodSeconds"]
    # A restart needs > 30 s without /healthz: more than the bridge's start (it listens
    # once its first Kafka attempt is over, <= kafka.request_timeout_ms = 5 s).
    live = bridge["livenessProbe"]
    assert live["initialDelaySeconds"] + live["periodSeconds"] * live["failureThreshold"] > 30
    res = bridge["resources"]
    for kind in ("cpu", "memory"):
        assert quantity(res["requests"][kind]) <= quantity(res["limits"][kind])
    assert (res["requests"]["cpu"], res["requests"]["memory"]) == ("50m", "64Mi")
    assert (res["limits"]["cpu"], res["limits"]["memory"]) == ("500m", "256Mi")
    sc = bridge["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("privileged", False) is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Every mount of every container names a volume of the pod (or a claim template).
    volumes = {v["name"] for v in pod["volumes"]}
    claims = {c["metadata"]["name"] for c in statefulset(docs)["spec"]["volumeClaimTemplates"]}
    for c in all_containers(pod):
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes | claims, f"{c['name']}: no volume {m['name']}"
    for m in bridge["volumeMounts"]:
        assert m.get("readOnly") is True, f"bridge mount {m['name']} must be read-only"


def test_pod_meets_the_restricted_pod_security_standard(rendered):
    """The rules of the "restricted" Pod Security Standard, for every container."""
    _, docs = rendered
    pod = statefulset(docs)["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key)
    allowed = {"configMap", "secret", "persistentVolumeClaim", "emptyDir", "projected",
               "downwardAPI", "csi", "ephemeral"}
    for v in pod.get("volumes", []):
        assert set(v) - {"name"} <= allowed, f"volume {v['name']}: type not allowed"
    for c in all_containers(pod):
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, c["name"]
        assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, c["name"]
        assert sc.get("allowPrivilegeEscalation") is False, c["name"]
        assert not sc.get("privileged"), c["name"]
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), c["name"]
        assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), c["name"]


def test_bridge_matches_the_image(rendered):
    """runAsUser is the image's USER, the container port the image's EXPOSE."""
    variant, docs = rendered
    runtime = dockerfile_stages()[1]
    user, group = parse_user(runtime.one("USER"))
    bridge = bridge_container(docs, variant)
    assert bridge["securityContext"]["runAsUser"] == int(user)
    assert bridge["securityContext"]["runAsGroup"] == int(group)
    assert [p["containerPort"] for p in bridge["ports"]] == [int(runtime.one("EXPOSE").args)]
    # The image's ENTRYPOINT is kept; only the configuration path changes.
    assert "command" not in bridge and bridge["args"][0] == "-c"


def test_configmap_configuration_validates_with_the_binary(rendered, image, tmp_path):
    variant, docs = rendered
    pod = statefulset(docs)["spec"]["template"]["spec"]
    bridge = bridge_container(docs, variant)
    cfg_path = bridge["args"][1]
    # The path given to -c is a key of the generated ConfigMap, mounted by the bridge.
    vol, _ = mount_for(bridge, pod, cfg_path)
    cm = generated(docs, "ConfigMap", "takhin-bridge-config")
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    text = cm["data"][os.path.basename(cfg_path)]
    assert text == read(os.path.join(K8S, "base", "takhin-bridge.cfg"))
    # The keys file it names is a key of the generated Secret, mounted by the bridge.
    m = re.search(r'api_keys_file\s*=\s*"([^"]+)"', text)
    keys_path = m.group(1)
    kvol, _ = mount_for(bridge, pod, keys_path)
    secret = generated(docs, "Secret", "takhin-bridge-keys")
    assert kvol["secret"]["secretName"] == secret["metadata"]["name"]
    assert os.path.basename(keys_path) in secret["data"]

    # The real binary checks the file, with the keys file at a path that exists here.
    keys = tmp_path / "api-keys"
    keys.write_text("# test key\n0123456789abcdef0123456789abcdef\n")
    cfg = tmp_path / "takhin-bridge.cfg"
    cfg.write_text(text.replace(f'"{keys_path}"', f'"{keys}"'))
    r = run_image_binary(image, "-t", "-c", str(cfg))
    assert r.returncode == 0 and r.stdout.strip() == f"{cfg}: configuration OK", r.stderr
    dump = run_image_binary(image, "-T", "-c", str(cfg)).stdout
    assert effective(dump, "kafka", "bootstrap_servers") == '"localhost:9092"'
    assert effective(dump, "server", "address") == '"0.0.0.0"'
    [http] = [p for p in bridge["ports"] if p["name"] == "http"]
    assert effective(dump, "server", "port") == str(http["containerPort"])
    # The limit holds server.max_clients idle clients: ~6 KB of process memory + ~4 KB of
    # kernel socket memory each (libwebsockets probe, shared/notes) above a 16 MiB base.
    max_clients = int(effective(dump, "server", "max_clients"))
    assert quantity(bridge["resources"]["limits"]["memory"]) >= 16 * 2**20 + max_clients * 10e3

    # The placeholder Secret holds no key: the bridge refuses it rather than run open.
    keys.write_bytes(base64.b64decode(secret["data"][os.path.basename(keys_path)]))
    assert b"REPLACE" in keys.read_bytes()
    r = run_image_binary(image, "-t", "-c", str(cfg))
    assert r.returncode == EX_CONFIG and "contains no API keys" in r.stderr, r.stderr


def test_bridge_can_read_its_mounts(rendered):
    """Projected files are owned by root, group = the pod's fsGroup when set: the bridge
    (uid 10001) reads them through the mode's world or group bits."""
    variant, docs = rendered
    pod = statefulset(docs)["spec"]["template"]["spec"]
    bridge = bridge_container(docs, variant)
    psc = pod.get("securityContext", {})
    groups = {bridge["securityContext"]["runAsGroup"], *psc.get("supplementalGroups", [])}
    if "fsGroup" in psc:
        groups.add(psc["fsGroup"])
    file_group = psc.get("fsGroup", 0)
    for m in bridge["volumeMounts"]:
        [vol] = [v for v in pod["volumes"] if v["name"] == m["name"]]
        src = vol.get("configMap") or vol.get("secret")
        mode = src.get("defaultMode", 0o644)
        assert mode & 0o004 or (mode & 0o040 and file_group in groups), \
            f"{m['name']}: mode {oct(mode)} unreadable for the bridge"
        assert not mode & 0o222, f"{m['name']}: writable"
        if "secret" in vol:
            assert not mode & 0o004, "the keys are not world-readable"


def test_service_reaches_the_bridge_port(rendered):
    variant, docs = rendered
    labels = statefulset(docs)["spec"]["template"]["metadata"]["labels"]
    pod = statefulset(docs)["spec"]["template"]["spec"]
    [svc] = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == BRIDGE]
    assert svc["spec"]["selector"].items() <= labels.items()
    [port] = svc["spec"]["ports"]
    assert port["port"] == 8080 and port.get("protocol", "TCP") == "TCP"
    # The named target port is exactly one port of the pod: the bridge's 8080.
    target = [(c["name"], p["containerPort"]) for c in all_containers(pod)
              for p in c.get("ports", []) if p["name"] == port["targetPort"]]
    assert target == [(BRIDGE, 8080)]


def test_broker_is_reachable_at_the_bridge_bootstrap_address(rendered):
    variant, docs = rendered
    sts = statefulset(docs)
    pod = sts["spec"]["template"]["spec"]
    [kafka] = [c for c in pod["containers"] if c["name"] == "kafka"]
    env = kafka["env"]
    # $(VAR) references name variables defined earlier in the list (Kubernetes rule).
    defined = set()
    for e in env:
        for ref in re.findall(r"\$\((\w+)\)", e.get("value", "")):
            assert ref in defined, f"{e['name']}: $({ref}) is not defined before it"
        defined.add(e["name"])
    env = {e["name"]: e.get("value") for e in env}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    cid = env["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    # The bridge bootstraps from localhost:9092 (its ConfigMap): the broker listens on
    # 9092 on all addresses and advertises the per-pod name of the headless Service.
    assert "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"].split(",")
    adv = env["KAFKA_ADVERTISED_LISTENERS"]
    headless_name = sts["spec"]["serviceName"]
    assert adv == f"PLAINTEXT://$(POD_NAME).{headless_name}.$(POD_NAMESPACE).svc:9092"
    assert [p["containerPort"] for p in kafka["ports"] if p["name"] == "kafka"] == [9092]
    [headless] = [s for s in by_kind(docs, "Service")
                  if s["metadata"]["name"] == sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    # The pod is Ready only once the bridge has collected from the broker through that
    # name, so the name must resolve before the pod is Ready.
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert headless["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"][
        "labels"].items()


def test_probe_paths_answer_on_the_real_binary(bridge):
    """The paths the manifests and the image probe exist: /healthz 200, /readyz 503 with a
    reason while Kafka is unreachable (not 404)."""
    docs = kustomize_build(VARIANTS["native"])
    b = bridge_container(docs, "native")
    live, ready = b["livenessProbe"]["httpGet"]["path"], b["readinessProbe"]["httpGet"]["path"]
    br = bridge()
    status, _, _ = br.http(live)
    assert status == 200
    status, _, body = br.http(ready)
    assert status == 503 and json.loads(body)["status"] == "not ready"
