"""Standing promises checked over the whole code base: no pickle loading, no secret in the repository."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / line for line in out.splitlines() if line]
    return [f for f in files if f.is_file()]


def python_sources():
    return [f for f in tracked_files() if f.suffix == ".py" and f.name != Path(__file__).name]


UNSAFE = [
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\bcPickle\b|\bdill\b|\bjoblib\.load\("), "pickle-based loader"),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy allow_pickle=True"),
    (re.compile(r"weights_only\s*=\s*False"), "torch.load(weights_only=False)"),
]


def test_no_pickle_loading_anywhere():
    problems = []
    for path in python_sources():
        text = path.read_text(errors="replace")
        for pattern, what in UNSAFE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: {what}")
        for match in re.finditer(r"\btorch\.load\(", text):
            call = text[match.start(): text.find(")", match.start()) + 200]
            if "weights_only=True" not in call:
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: torch.load without weights_only=True")
    assert not problems, "\n".join(problems)


SECRET_PATTERNS = [
    re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"""SECRET_KEY\s*=\s*["'](?!dev-only|change-me|build-only)[^"'\s]{20,}["']"""),
]


def test_no_secret_in_the_repository():
    problems = []
    for path in tracked_files():
        if path.suffix in {".png", ".jpg", ".ico", ".woff", ".woff2"}:
            continue
        text = path.read_text(errors="replace")
        for pattern in SECRET_PATTERNS:
            if pattern.search(text):
                problems.append(f"{path.relative_to(ROOT)}: {pattern.pattern}")
    assert not problems, "\n".join(problems)
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_licensed_data_is_not_committed():
    names = [str(f.relative_to(ROOT)) for f in tracked_files()]
    assert not [n for n in names if re.search(r"yoochoose-clicks|retailrocket_processed|2019-Oct", n)]
    big = [n for n, f in zip(names, tracked_files()) if f.stat().st_size > 1024 * 1024]
    assert not big, f"large files tracked: {big}"
