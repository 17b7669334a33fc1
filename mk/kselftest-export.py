#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
Put kvmfpu into a kernel tree's KVM selftests, take it out again, or write the same change as
a git format-patch series. The tree's own build then builds the tests with its own flags and
`make kselftest TARGETS=kvm` / run_kselftest.sh run them.

usage: kselftest-export.py export KDIR        (idempotent; refuses to overwrite foreign files)
       kselftest-export.py unexport KDIR      (restores what export changed)
       kselftest-export.py patches KDIR OUT   (format-patch series against KDIR's git HEAD)

Where things go, in tools/testing/selftests/kvm/ (ARCH is x86_64/ up to 6.13, x86/ from 6.14,
probed by the library headers' directory, never by version number):
  selftests/kvmfpu_*.c        -> ARCH/kvmfpu_*.c            (one test program each)
  lib/*.{c,h,S}               -> ARCH/kvmfpu/lib/           (host library)
  guest_code/*.{c,h,S}        -> ARCH/kvmfpu/guest_code/    (guest code, -mgeneral-regs-only)
The programs are registered in the tree's KVM Makefile (Makefile, or Makefile.kvm where the
Makefile only includes it): one TEST_GEN_PROGS_<ARCH> line per program after the tree's own,
and one block at the end that builds the library and guest code and links them into the
kvmfpu programs only. Where the tree's .gitignore lists binaries (6.1), they are added there.

export records what it did in tools/testing/selftests/kvm/.kvmfpu-export.json (git-ignored by
the kernel's ".*" rule): every added file with its checksum, the directories it created and the
exact lines it inserted into each edited file. unexport computes the reverse from it and also
deletes the in-tree build products of the added sources (X.o, X.d, the program binaries).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap

KVM = "tools/testing/selftests/kvm"
MANIFEST = ".kvmfpu-export.json"
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNOFF_PLACEHOLDER = ("Your Name", "you@example.com")


class Refuse(Exception):
    """A one-line reason to change nothing."""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# -- the tree: read either the working tree or a git commit --------------------------------

class WorkTree:
    def __init__(self, kdir):
        self.kdir = kdir

    def path(self, rel):
        return os.path.join(self.kdir, KVM, rel)

    def read(self, rel):
        try:
            with open(self.path(rel), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def exists(self, rel):
        return os.path.lexists(self.path(rel))


class GitTree:
    """The tree as committed at HEAD (paths relative to the KVM selftests directory)."""

    def __init__(self, kdir):
        self.kdir = kdir
        self.prefix = git(kdir, "rev-parse", "--show-prefix").strip() + KVM + "/"
        self.files = set(git(kdir, "ls-tree", "-r", "--name-only", "HEAD", "--",
                             self.prefix).splitlines())
        self.dirs = {os.path.dirname(f) for f in self.files}
        for d in list(self.dirs):
            while d:
                d = os.path.dirname(d)
                self.dirs.add(d)

    def full(self, rel):
        return os.path.normpath(self.prefix + rel)

    def read(self, rel):
        if self.full(rel) not in self.files:
            return None
        return subprocess.run(["git", "-C", self.kdir, "cat-file", "blob",
                               "HEAD:" + self.full(rel)], check=True,
                              stdout=subprocess.PIPE).stdout

    def exists(self, rel):
        return self.full(rel) in self.files or self.full(rel) in self.dirs


def git_config(kdir, key):
    r = subprocess.run(["git", "-C", kdir, "config", key], stdout=subprocess.PIPE)
    return r.stdout.decode().strip() if r.returncode == 0 else ""


def git(kdir, *args, env=None, data=None):
    r = subprocess.run(["git", "-C", kdir] + list(args), input=data, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode:
        raise Refuse("git %s failed: %s" % (args[0], r.stderr.decode().strip()))
    return r.stdout.decode()


# -- probing the layout of this kernel version ---------------------------------------------

class Layout:
    """What this tree's KVM selftests look like, found by feature tests on its files."""

    def __init__(self, tree):
        if tree.exists("include/x86/processor.h"):
            self.arch = "x86"
        elif tree.exists("include/x86_64/processor.h"):
            self.arch = "x86_64"
        else:
            raise Refuse("no include/x86/processor.h or include/x86_64/processor.h in " + KVM)
        self.makefile = "Makefile.kvm" if tree.exists("Makefile.kvm") else "Makefile"
        text = (tree.read(self.makefile) or b"").decode()
        m = re.search(r"^TEST_GEN_PROGS\s*\+=\s*\$\(TEST_GEN_PROGS_\$\((\w+)\)\)", text, re.M)
        if not m:
            raise Refuse("%s/%s has no 'TEST_GEN_PROGS += $(TEST_GEN_PROGS_$(...))' line"
                         % (KVM, self.makefile))
        self.selector = m.group(1)
        self.progs_var = "TEST_GEN_PROGS_" + self.arch
        # 6.12 and later compile each test to an object and link with "$< $(LIBKVM_OBJS)";
        # 6.1 links straight from the .c with lib.mk's rule over all prerequisites ($^).
        self.test_objs = "TEST_GEN_OBJ" in text
        self.link_names_libkvm = re.search(r"\$<\s+\$\(LIBKVM_OBJS\)", text) is not None
        ign = (tree.read(".gitignore") or b"").decode().splitlines()
        self.gitignore_lists_binaries = bool(ign) and "*" not in ign

    def dest(self, kind, name):
        if kind == "selftests":
            return "%s/%s" % (self.arch, name)
        return "%s/kvmfpu/%s/%s" % (self.arch, kind, name)


# -- what export puts into the tree --------------------------------------------------------

def source_files(src):
    """[(kind, name)] of the files to export, found by wildcard at export time."""
    out = []
    for kind, exts in (("lib", (".c", ".h", ".S")), ("guest_code", (".c", ".h", ".S")),
                       ("selftests", (".c",))):
        d = os.path.join(src, kind)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.endswith(exts) and os.path.isfile(os.path.join(d, name)):
                if kind == "selftests" and not re.fullmatch(r"kvmfpu_\w+\.c", name):
                    raise Refuse("selftests/%s: test programs must be named kvmfpu_*.c "
                                 "(kselftest install flattens names)" % name)
                out.append((kind, name))
    if not any(k == "selftests" for k, _ in out):
        raise Refuse("no test programs in %s/selftests" % src)
    return out


def desired_files(src, layout):
    files = {}
    for kind, name in source_files(src):
        with open(os.path.join(src, kind, name), "rb") as f:
            files[layout.dest(kind, name)] = f.read()
    return files


def programs(files, layout):
    return sorted(p[:-2] for p in files if p.startswith(layout.arch + "/kvmfpu_"))


def objects(files, layout, kind):
    pre = "%s/kvmfpu/%s/" % (layout.arch, kind)
    return sorted(p for p in files if p.startswith(pre) and p.endswith((".c", ".S")))


def registration_lines(files, layout):
    return ["%s += %s" % (layout.progs_var, p) for p in programs(files, layout)]


def rules_block(files, layout):
    a = layout.arch
    lib, guest = objects(files, layout, "lib"), objects(files, layout, "guest_code")
    lines = [
        "",
        "# kvmfpu: tests of KVM's x86 FPU state handling (%s/kvmfpu_*). Their host library" % a,
        "# (%s/kvmfpu/lib/) and guest code (%s/kvmfpu/guest_code/) are linked into them only." % (a, a),
        "# Guest code is built with -mgeneral-regs-only, so the compiler cannot emit x87, SSE or",
        "# AVX instructions there: the guest's only FPU accesses are its explicit asm.",
        "ifeq ($(%s),%s)" % (layout.selector, a),
    ]
    lines += ["KVMFPU_LIB += %s" % f for f in lib]
    lines += ["KVMFPU_GUEST += %s" % f for f in guest]
    has_s = any(f.endswith(".S") for f in lib + guest)
    lines += [
        "KVMFPU_SRCS := $(KVMFPU_LIB) $(KVMFPU_GUEST)",
        "KVMFPU_C_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(filter %.c,$(KVMFPU_SRCS)))",
        "KVMFPU_S_OBJS := $(patsubst %.S,$(OUTPUT)/%.o,$(filter %.S,$(KVMFPU_SRCS)))",
        "KVMFPU_OBJS := $(KVMFPU_C_OBJS) $(KVMFPU_S_OBJS)",
        "KVMFPU_PROGS := $(filter $(OUTPUT)/%s/kvmfpu_%%,$(TEST_GEN_PROGS))" % a,
        "KVMFPU_INCLUDES := -I%s/kvmfpu/lib -I%s/kvmfpu/guest_code" % (a, a),
        "",
        "$(shell mkdir -p $(OUTPUT)/%s/kvmfpu/lib $(OUTPUT)/%s/kvmfpu/guest_code)" % (a, a),
        "$(KVMFPU_C_OBJS): $(OUTPUT)/%.o: %.c",
        "\t$(CC) $(CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@",
    ]
    if has_s:
        lines += ["$(KVMFPU_S_OBJS): $(OUTPUT)/%.o: %.S",
                  "\t$(CC) $(CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@"]
    lines += [
        "$(OUTPUT)/%s/kvmfpu/guest_code/%%.o: CFLAGS += -mgeneral-regs-only" % a,
    ]
    if layout.test_objs:
        lines.append("$(KVMFPU_OBJS) $(KVMFPU_PROGS:=.o): CFLAGS += $(KVMFPU_INCLUDES)")
    else:
        # Programs compile and link in one step here; "private" keeps the include paths
        # from spreading to the library objects built as their prerequisites.
        lines += ["$(KVMFPU_OBJS): CFLAGS += $(KVMFPU_INCLUDES)",
                  "$(KVMFPU_PROGS): private CFLAGS += $(KVMFPU_INCLUDES)"]
    lines.append("$(KVMFPU_PROGS): $(KVMFPU_OBJS)")
    if layout.link_names_libkvm:
        lines.append("$(KVMFPU_PROGS): LIBKVM_OBJS += $(KVMFPU_OBJS)")
    lines += [
        "-include $(KVMFPU_OBJS:.o=.d)",
        "EXTRA_CLEAN += $(KVMFPU_OBJS) $(KVMFPU_OBJS:.o=.d)",
        "endif",
    ]
    return lines


def insert_after_last(lines, pattern, block, what):
    idx = [i for i, l in enumerate(lines) if re.match(pattern, l)]
    if not idx:
        raise Refuse("cannot find where to register the tests in %s" % what)
    return lines[:idx[-1] + 1] + block + lines[idx[-1] + 1:]


def edited_texts(tree, layout, files):
    """{file: (new text, [inserted blocks])} for the tree's files that export edits."""
    edits = {}
    text = tree.read(layout.makefile).decode()
    lines = text.split("\n")
    trail = lines.pop() if lines and lines[-1] == "" else None
    reg = registration_lines(files, layout)
    lines = insert_after_last(lines, r"%s\s*\+?=\s*%s/" % (layout.progs_var, layout.arch),
                              reg, "%s/%s" % (KVM, layout.makefile))
    rules = rules_block(files, layout)
    lines += rules
    if trail is not None:
        lines.append(trail)
    edits[layout.makefile] = ("\n".join(lines), [reg, rules])
    if layout.gitignore_lists_binaries:
        text = tree.read(".gitignore").decode()
        lines = text.split("\n")
        trail = lines.pop() if lines and lines[-1] == "" else None
        ign = ["/" + p for p in programs(files, layout)]
        lines = insert_after_last(lines, r"/%s/" % layout.arch, ign, KVM + "/.gitignore")
        if trail is not None:
            lines.append(trail)
        edits[".gitignore"] = ("\n".join(lines), [ign])
    return edits


def remove_blocks(text, blocks, name):
    lines = text.split("\n")
    for block in blocks:
        n = len(block)
        at = [i for i in range(len(lines) - n + 1) if lines[i:i + n] == block]
        if len(at) != 1:
            raise Refuse("%s/%s: the lines export added were changed since; remove them by hand "
                         "and delete %s/%s" % (KVM, name, KVM, MANIFEST))
        del lines[at[0]:at[0] + n]
    return "\n".join(lines)


def header_collisions(tree, layout, files):
    """Our headers are included by bare name; the tree's -I paths come first in CFLAGS."""
    dirs = ["include", "include/" + layout.arch, "..", "../rseq"]
    for p in sorted(files):
        if p.endswith(".h"):
            for d in dirs:
                if tree.exists("%s/%s" % (d, os.path.basename(p))):
                    raise Refuse("kvmfpu header %s would be shadowed by the tree's %s/%s/%s"
                                 % (os.path.basename(p), KVM, d, os.path.basename(p)))


def foreign(path):
    return ("%s/%s exists and was not put there by 'make export' (move it away, or run "
            "'make unexport' if an older kvmfpu put it there)" % (KVM, path))


# -- export / unexport in a working tree ----------------------------------------------------

def load_manifest(tree):
    data = tree.read(MANIFEST)
    return json.loads(data) if data else None


def check_tree(kdir):
    if not os.path.isfile(os.path.join(kdir, KVM, "lib", "kvm_util.c")):
        raise Refuse("KDIR=%s has no KVM selftests (%s/lib/kvm_util.c)" % (kdir, KVM))


def build_products(path, layout):
    """In-tree build outputs of an exported source file."""
    base, ext = os.path.splitext(path)
    if ext not in (".c", ".S"):
        return []
    out = [base + ".o", base + ".d"]
    if path.startswith(layout.arch + "/kvmfpu_"):
        out.append(base)
    return out


def write_file(tree, rel, data, created):
    d = os.path.dirname(rel)
    missing = []
    while d and not os.path.isdir(tree.path(d)):
        missing.append(d)
        d = os.path.dirname(d)
    for m in reversed(missing):
        os.mkdir(tree.path(m))
        created.append(m)
    with open(tree.path(rel), "wb") as f:
        f.write(data)


def do_export(kdir):
    check_tree(kdir)
    tree = WorkTree(kdir)
    layout = Layout(tree)
    files = desired_files(SRC, layout)
    man = load_manifest(tree)
    owned = man["files"] if man else {}

    # Everything is checked before anything is written.
    for p, digest in owned.items():
        data = tree.read(p)
        if data is not None and sha256(data) != digest:
            raise Refuse("%s/%s was changed since 'make export'; keep your change elsewhere "
                         "and delete it, then export again" % (KVM, p))
    for p in files:
        if p not in owned and tree.exists(p):
            raise Refuse(foreign(p))
    if not man:
        if tree.exists(layout.arch + "/kvmfpu"):
            raise Refuse(foreign(layout.arch + "/kvmfpu"))
        if "kvmfpu" in tree.read(layout.makefile).decode().lower():
            raise Refuse("%s/%s already mentions kvmfpu, but no %s records an export"
                         % (KVM, layout.makefile, MANIFEST))
    header_collisions(tree, layout, files)

    base = {}
    for name in set((man or {}).get("edits", {})) | {layout.makefile, ".gitignore"}:
        data = tree.read(name)
        if data is None:
            continue
        text = data.decode()
        if man and name in man["edits"]:
            text = remove_blocks(text, man["edits"][name]["blocks"], name)
        base[name] = text

    class Base:
        def read(self, rel):
            return base[rel].encode() if rel in base else tree.read(rel)

        def exists(self, rel):
            return tree.exists(rel)

    edits = edited_texts(Base(), layout, files)
    changed = 0
    for name in base:
        new = edits[name][0] if name in edits else base[name]
        if tree.read(name).decode() != new:
            with open(tree.path(name), "w") as f:
                f.write(new)
            changed += 1

    created = list((man or {}).get("dirs", []))
    for p, data in sorted(files.items()):
        if tree.read(p) != data:
            write_file(tree, p, data, created)
            changed += 1
    for p in sorted(set(owned) - set(files)):
        for q in [p] + build_products(p, layout):
            if os.path.isfile(tree.path(q)):
                os.unlink(tree.path(q))
        changed += 1

    manifest = {
        "what": "files and lines kvmfpu's 'make export' put here; 'make unexport' reverses "
                "them (source: %s)" % SRC,
        "arch": layout.arch,
        "files": {p: sha256(d) for p, d in sorted(files.items())},
        "dirs": created,
        "edits": {name: {"original_sha256": sha256(base[name].encode()),
                         "blocks": blocks}
                  for name, (_, blocks) in sorted(edits.items())},
    }
    with open(tree.path(MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    progs = [os.path.basename(p) for p in programs(files, layout)]
    print("kvmfpu: %s %d files into %s/%s: %s/{%s}.c and %s/kvmfpu/; registered in %s (%s)"
          % ("exported" if changed else "already exported, nothing changed:", len(files),
             kdir, KVM, layout.arch, ",".join(progs), layout.arch, layout.makefile,
             layout.progs_var))


def do_unexport(kdir):
    check_tree(kdir)
    tree = WorkTree(kdir)
    man = load_manifest(tree)
    if not man:
        print("kvmfpu: nothing to unexport in %s (no %s/%s)" % (kdir, KVM, MANIFEST))
        return
    layout = Layout(tree)
    for p, digest in man["files"].items():
        data = tree.read(p)
        if data is not None and sha256(data) != digest:
            raise Refuse("%s/%s was changed since 'make export'; keep your change elsewhere "
                         "and delete it, then unexport again" % (KVM, p))
    restored = {}
    for name, edit in man["edits"].items():
        text = remove_blocks(tree.read(name).decode(), edit["blocks"], name)
        restored[name] = (text, sha256(text.encode()) == edit["original_sha256"])

    for name, (text, _) in restored.items():
        with open(tree.path(name), "w") as f:
            f.write(text)
    for p in sorted(man["files"]):
        for q in [p] + build_products(p, layout):
            if os.path.isfile(tree.path(q)):
                os.unlink(tree.path(q))
    kept = []
    for d in sorted(man["dirs"], key=len, reverse=True):
        try:
            os.rmdir(tree.path(d))
        except FileNotFoundError:
            pass
        except OSError:
            kept.append(d)
    os.unlink(tree.path(MANIFEST))
    print("kvmfpu: unexported %d files from %s/%s; %s" % (
        len(man["files"]), kdir, KVM,
        ", ".join("%s %s" % (n, "restored exactly" if ok else
                             "freed of kvmfpu's lines (it has other changes too)")
                  for n, (_, ok) in sorted(restored.items()))))
    for d in kept:
        print("kvmfpu: kept %s/%s: it holds files kvmfpu did not put there" % (KVM, d))


# -- export-patches ------------------------------------------------------------------------

def comment_summary(data):
    """The first sentence-paragraph of a file's header comment, as one line."""
    text = data.decode(errors="replace")
    m = re.search(r"/\*\s*\n((?:\s*\*.*\n)+?)\s*\*/", text)
    if not m:
        return ""
    para = []
    for line in m.group(1).splitlines():
        line = re.sub(r"^\s*\*\s?", "", line).rstrip()
        if not line:
            if para:
                break
            continue
        para.append(line)
    return " ".join(para)


def header_comment(data):
    """A program's whole header comment, dedented, for a commit message body."""
    text = data.decode(errors="replace")
    m = re.search(r"/\*\s*\n((?:\s*\*.*\n)+?)\s*\*/", text)
    if not m:
        return ""
    return "\n".join(re.sub(r"^\s*\*( |$)", "", l).rstrip() for l in m.group(1).splitlines())


def rewrap(text):
    """Refill a comment's prose to 72 columns; indented lines (tables) stay as they are."""
    out, prose = [], []
    for line in text.split("\n") + [""]:
        if line and not line[0].isspace():
            prose.append(line)
            continue
        if prose:
            out.append(textwrap.fill(" ".join(prose), 72, break_on_hyphens=False))
            prose = []
        out.append(line)
    return "\n".join(out[:-1])


def wrap(text):
    return "\n".join(textwrap.fill(p, 72, break_on_hyphens=False) for p in text.split("\n\n"))


def file_list(paths, files):
    out = []
    for p in paths:
        if p.endswith((".c", ".S")):
            s = comment_summary(files[p])
            name = os.path.basename(p)
            out.append(textwrap.fill(s, 72, initial_indent="  %-14s" % name,
                                     subsequent_indent=" " * 16, break_on_hyphens=False)
                       if s else "  " + name)
    return "\n".join(out)


def series(files, layout, edits):
    """[(subject, body, {path: bytes})] in the order of the patches."""
    a = layout.arch
    lib = sorted(p for p in files if p.startswith(a + "/kvmfpu/lib/"))
    guest = sorted(p for p in files if p.startswith(a + "/kvmfpu/guest_code/"))
    out = [
        ("KVM: selftests: Add the kvmfpu host library for x86 FPU state tests",
         wrap("Add the host side of kvmfpu, tests of KVM's handling of guest x86 FPU "
              "state: whether KVM swaps guest and host x87, SSE, AVX, AVX-512, PKRU and AMX "
              "state correctly around KVM_RUN, and whether KVM_GET/SET_XSAVE(2) images hold "
              "exactly what the guest loaded. The library lives in %s/kvmfpu/lib/ and is "
              "linked into the kvmfpu_* tests only; it is not built until the tests are "
              "registered in the Makefile at the end of this series." % a)
         + "\n\n" + file_list(lib, files),
         {p: files[p] for p in lib}),
        ("KVM: selftests: Add kvmfpu guest code that loads and saves FPU state",
         wrap("Add the code kvmfpu runs in the guest: one file per xstate component, each "
              "filling and saving its registers with explicit asm. It calls no KVM selftest "
              "library code and is built with -mgeneral-regs-only, so the compiler cannot "
              "emit an x87, SSE or AVX instruction that would disturb the registers under "
              "test or fault where XCR0/CR4 forbid it.")
         + "\n\n" + file_list(guest, files),
         {p: files[p] for p in guest}),
    ]
    for prog in programs(files, layout):
        c = prog + ".c"
        name = os.path.basename(prog)
        body = rewrap(header_comment(files[c])).strip() or "Add %s." % name
        out.append(("KVM: selftests: Add %s" % name, body, {c: files[c]}))
    reg = {name: text.encode() for name, (text, _) in edits.items()}
    out.append(("KVM: selftests: Build and run the kvmfpu tests",
                wrap("Register the kvmfpu_* programs in %s so that the tree's build "
                     "builds them with its own flags and the kselftest runner runs them. "
                     "The kvmfpu library and guest code get their own objects, linked into "
                     "the kvmfpu programs only; the guest code is compiled with "
                     "-mgeneral-regs-only." % layout.makefile)
                + ("\n\n" + wrap("List the new binaries in .gitignore.")
                   if ".gitignore" in reg else ""),
                reg))
    return out


def do_patches(kdir, outdir):
    check_tree(kdir)
    r = subprocess.run(["git", "-C", kdir, "rev-parse", "--is-inside-work-tree"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if r.returncode or r.stdout.strip() != b"true":
        raise Refuse("KDIR=%s is not a git repository: format-patch needs one "
                     "(git init; git add -A; git commit, in a copy of the tree)" % kdir)
    if subprocess.run(["git", "-C", kdir, "rev-parse", "--verify", "-q", "HEAD"],
                      stdout=subprocess.DEVNULL).returncode:
        raise Refuse("KDIR=%s has no commit to base the patches on" % kdir)
    head = GitTree(kdir)
    layout = Layout(head)
    files = desired_files(SRC, layout)
    for p in files:
        if head.exists(p):
            raise Refuse("%s/%s already exists at HEAD" % (KVM, p))
    if "kvmfpu" in head.read(layout.makefile).decode().lower():
        raise Refuse("%s/%s at HEAD already mentions kvmfpu" % (KVM, layout.makefile))
    header_collisions(head, layout, files)
    edits = edited_texts(head, layout, files)

    name, email = git_config(kdir, "user.name"), git_config(kdir, "user.email")
    placeholder = not (name and email)
    if placeholder:
        name, email = SIGNOFF_PLACEHOLDER
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)

    parent = git(kdir, "rev-parse", "HEAD").strip()
    base = parent
    with tempfile.TemporaryDirectory() as tmp:
        env["GIT_INDEX_FILE"] = os.path.join(tmp, "index")
        git(kdir, "read-tree", "HEAD", env=env)
        for subject, body, content in series(files, layout, edits):
            for rel, data in sorted(content.items()):
                blob = git(kdir, "hash-object", "-w", "--stdin", data=data).strip()
                git(kdir, "update-index", "--add", "--cacheinfo",
                    "100644,%s,%s" % (blob, head.full(rel)), env=env)
            tree_id = git(kdir, "write-tree", env=env).strip()
            msg = "%s\n\n%s\n\nSigned-off-by: %s <%s>\n" % (subject, body.rstrip(), name, email)
            parent = git(kdir, "commit-tree", tree_id, "-p", parent, env=env,
                         data=msg.encode()).strip()
        del env["GIT_INDEX_FILE"]
    os.makedirs(outdir, exist_ok=True)
    out = git(kdir, "format-patch", "--cover-letter", "-o", os.path.abspath(outdir),
              "%s..%s" % (base, parent), env=env).split()
    cover_letter(out[0], len(out) - 1)
    for p in out:
        print(p)
    if placeholder:
        print("kvmfpu: git user.name/user.email are not set in %s: the patches say '%s <%s>'; "
              "replace it with yours before sending" % ((kdir,) + SIGNOFF_PLACEHOLDER),
              file=sys.stderr)
    else:
        print("kvmfpu: author and Signed-off-by are '%s <%s>' (git config user.* in %s); "
              "check it is the sender's" % (name, email, kdir), file=sys.stderr)


def cover_letter(path, n):
    src_rev = subprocess.run(["git", "-C", SRC, "describe", "--always", "--dirty"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    rev = os.environ.get("KVMFPU_DESCRIBE") or src_rev.stdout.decode().strip() or "unknown"
    blurb = wrap(
        "This series adds kvmfpu, selftests for KVM's x86 FPU state handling: whether KVM "
        "keeps guest and host x87, SSE, AVX, AVX-512, PKRU and AMX state apart across "
        "KVM_RUN, and whether the KVM_GET/SET_XSAVE(2) uABI images hold exactly the guest's "
        "registers. Every mismatch is reported by component, register and byte with the "
        "expected and actual values, and with the arguments that replay it.") + "\n\n" + wrap(
        "The first patches add the host library, the guest code and the test programs; the "
        "last registers them in the KVM selftests Makefile. The programs are kselftest "
        "harness programs: exit 0 pass, 1 fail, 4 skip, and each check that the host's KVM "
        "cannot run is skipped with the missing feature named.") + \
        "\n\nGenerated from kvmfpu %s by 'make export-patches'." % rev
    with open(path) as f:
        text = f.read()
    text = text.replace("*** SUBJECT HERE ***",
                        "KVM: selftests: Add kvmfpu, tests of x86 FPU state handling")
    text = text.replace("*** BLURB HERE ***", blurb)
    with open(path, "w") as f:
        f.write(text)


def main(argv):
    cmds = {"export": (do_export, 1), "unexport": (do_unexport, 1), "patches": (do_patches, 2)}
    target = {"patches": "export-patches"}.get(argv[1] if len(argv) > 1 else "", None)
    if len(argv) < 2 or argv[1] not in cmds or len(argv) != 2 + cmds[argv[1]][1]:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    fn = cmds[argv[1]][0]
    kdir = os.path.abspath(argv[2])
    try:
        fn(kdir, *argv[3:])
    except Refuse as e:
        print("kvmfpu: refusing to %s: %s" % (target or argv[1], e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
