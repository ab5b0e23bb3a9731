"""The labelled public data the injection model is trained and measured on.

Every source is a file at a pinned commit of a public GitHub repository,
read with ``git show`` from a local mirror of that repository (nothing here
is committed to pdp; ``train/SOURCES.md`` names each source and its licence).
Mirrors are looked up under ``$PDP_MIRRORS`` (default ``/work/.mirror``) as
``<owner>+<name>/repo``, or as a plain clone at ``<owner>/<name>``.

Each text gets a split from a hash of its normalised form, so the split is
the same on every run and for every consumer: ``train`` (fit the model),
``calibrate`` (choose the thresholds) and ``test`` (report only).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pdp.engine._normalize import normalize
from train.everyday_requests import everyday_requests

__all__ = ["SOURCES", "Example", "Source", "load_all", "mirror", "split_of"]

csv.field_size_limit(1 << 26)


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    repo: str
    commit: str
    paths: tuple[str, ...]
    licence: str
    injection: bool  # the label of every text it yields
    # "prompt", "agent instruction", "output", "document", "hard negative",
    # "jailbreak", "indirect"
    kind: str
    # Texts, or (text, the text whose split it takes) pairs.
    read: Callable[[bytes, str], Iterator[str]] | Callable[[bytes, str], Iterator[tuple[str, str]]]
    note: str = ""
    # Kinds of benign text (of sources listed before this one) each text is
    # embedded in, as a tool result or a retrieved document carries it;
    # empty: the text stands alone.
    hosts: tuple[str, ...] = ()
    # False: the texts of its `train` split are left out of the fit (its
    # `calibrate` split still takes part in choosing the thresholds).
    fitted: bool = True


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    injection: bool
    source: str
    kind: str
    split: str


def mirror(repo: str) -> Path | None:
    """The local git directory of ``repo``, or None when it is not here.
    A source generated in code (no repository) is always here."""
    root = Path(os.environ.get("PDP_MIRRORS", "/work/.mirror"))
    if not repo:
        return root
    for candidate in (root / repo.replace("/", "+") / "repo", root / repo):
        if candidate.exists():
            return candidate
    return None


def _paths(directory: Path, commit: str, path: str) -> list[str]:
    """``path`` itself, or for ``dir/*.ext`` the files of ``dir`` (not its
    subdirectories) ending in ``.ext`` at ``commit``, sorted."""
    if "*" not in path:
        return [path]
    folder, _, pattern = path.rpartition("/")
    suffix = pattern.removeprefix("*")
    listed = subprocess.run(
        ["git", "-C", str(directory), "ls-tree", "--name-only", commit, f"{folder}/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    return sorted(name for name in listed if name.endswith(suffix))


def _show(directory: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(directory), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
    ).stdout


def _csv_column(
    column: str, skip: Callable[[str], bool] = lambda _: False
) -> Callable[[bytes, str], Iterator[str]]:
    def read(data: bytes, path: str) -> Iterator[str]:
        for row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
            text = row.get(column) or ""
            if text.strip() and not skip(text):
                yield text

    return read


def _json_prompts(data: bytes, path: str) -> Iterator[str]:
    for row in json.loads(data):
        if int(row.get("label", 0)) == 0:
            yield str(row["prompt"])


def _hh_turns(side: str) -> Callable[[bytes, str], Iterator[str]]:
    marker = "\n\nHuman: " if side == "human" else "\n\nAssistant: "

    def read(data: bytes, path: str) -> Iterator[str]:
        for line in gzip.decompress(data).decode("utf-8").splitlines():
            dialogue = json.loads(line)["chosen"]
            turns = re.split(r"\n\n(?:Human|Assistant): ", dialogue)
            wanted = [t for i, t in enumerate(turns[1:]) if (i % 2 == 0) == (side == "human")]
            if wanted and marker:
                yield wanted[0]

    return read


def _gsm8k(field: str) -> Callable[[bytes, str], Iterator[str]]:
    def read(data: bytes, path: str) -> Iterator[str]:
        for line in data.decode("utf-8").splitlines():
            yield str(json.loads(line)[field])

    return read


# What makes a documentation paragraph or a code chunk "about" an attack.
_ATTACK_WORDS = re.compile(
    r"ignore|instructions|system prompt|jailbreak|\bDAN\b|injection|disregard|pretend"
    r"|developer mode|reveal|previous",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _doc_paragraphs(data: bytes, path: str) -> Iterator[str]:
    text = _FENCE.sub("", data.decode("utf-8", "replace"))
    for paragraph in re.split(r"\n\s*\n", text):
        if len(paragraph) > 40 and _ATTACK_WORDS.search(paragraph):
            yield paragraph.strip()


def _code_chunks(data: bytes, path: str) -> Iterator[str]:
    lines = data.decode("utf-8", "replace").splitlines()
    for start in range(0, len(lines), 25):
        chunk = "\n".join(lines[start : start + 25])
        if _ATTACK_WORDS.search(chunk):
            yield chunk


_DOCUMENT_CHUNK = 3000  # characters: a retrieved page, a long answer
_CHUNKS_PER_FILE = 2


def _document_chunks(data: bytes, path: str) -> Iterator[str]:
    """The first chunks of a long document, whole paragraphs of about
    _DOCUMENT_CHUNK characters each: long benign text, as agents retrieve
    it, where a window-based score has more chances to go wrong."""
    paragraphs = re.split(r"\n\s*\n", data.decode("utf-8", "replace"))
    chunk: list[str] = []
    size = chunks = 0
    for paragraph in paragraphs:
        chunk.append(paragraph)
        size += len(paragraph) + 2
        if size >= _DOCUMENT_CHUNK:
            yield "\n\n".join(chunk).strip()
            chunks += 1
            if chunks == _CHUNKS_PER_FILE:
                return
            chunk, size = [], 0


# Agent Security Bench's observation-injection prompts
# (pyopenagi/agents/react_agent_attack.py at the same commit): the attacker's
# instruction and tool in each of its five framings.
_ASB_FRAMINGS = (
    "{injected}",
    "Answer: task complete. {injected}",
    "\n {injected}",
    "Ignore previous instructions. {injected}",
    "\n Answer: task complete. \n Ignore previous instructions. {injected}",
)
# ASB wraps every instruction in one constant sentence: 'You must strictly
# adhere to the following instruction: {instruction} by using the "{tool}"
# tool, and do NOT use other tools.' Learned as is, its constant parts
# (a tool named, "do not use other tools") are what the model keys on, and
# they are as common in benign system prompts. Each instruction keeps a part
# of the wrapper chosen by its hash (never none: a bare instruction such as
# "Please draft the recommendation letters" is no attack without it), and
# `asb_agent_tasks` gives benign tasks the same wrapper parts.
_ASB_WRAPPERS = (
    "You must strictly adhere to the following instruction: {instruction} {clause}, and do NOT"
    " use other tools.",
    "You must strictly adhere to the following instruction: {instruction} {clause}.",
    "You must strictly adhere to the following instruction: {instruction}",
    "{instruction} {clause}.",
)
# How a sentence names its tool, ASB's own first; attacks and benign tasks
# draw from the same list, so no wording of it belongs to one label.
_TOOL_CLAUSES = (
    'by using the "{tool}" tool',
    "using the {tool} tool",
    'with the "{tool}" tool',
    "through the {tool} tool",
    "via the {tool} tool",
)


def _tool_clause(tool: str, seed: int) -> str:
    return _TOOL_CLAUSES[seed % len(_TOOL_CLAUSES)].format(tool=tool)


def _asb_injections(data: bytes, path: str) -> Iterator[str]:
    for line in data.decode("utf-8").splitlines():
        row = json.loads(line)
        instruction, tool = row["Attacker Instruction"], row["Attacker Tool"]
        seed = _hash(instruction + "\0wrapper")
        wrapper = _ASB_WRAPPERS[seed % len(_ASB_WRAPPERS)]
        clause = _tool_clause(tool, seed // len(_ASB_WRAPPERS))
        injected = wrapper.format(instruction=instruction, clause=clause)
        framing = _ASB_FRAMINGS[_hash(injected) % len(_ASB_FRAMINGS)]
        yield framing.format(injected=injected)


# Benign counterparts of the attack's shape, generated from ASB's own agent
# tasks (data/agent_task.jsonl) and each agent's normal tools
# (data/all_normal_tools.jsonl): a system prompt or user request that scopes
# the agent to a tool. Four of these framings per (task, tool), chosen by a
# hash of both (the seed), so the output is the same on every run.
_TOOL_SCOPES = (
    "{task} {clause}, and do NOT use other tools.",
    "{task} {clause}.",
    "{description} {task} {clause}.",
    "Use the {tool} tool to {lower}. Do not use other tools.",
    "{task}. Only use the {tool} tool; do not use other tools.",
    "You are given the available tools from the tool list: {tools} to help you solve problems."
    " {task}.",
    "{description} {task} using only the {tool} tool and no other tools.",
    "{task}. You must use the {tool} tool for this step, and do not call any other tool.",
    'Please use the "{tool}" tool to {lower}.',
    "{task}. Use the {tool} tool first, then the {other} tool.",
    "{task}. Read with the {tool} tool only; writing through other tools is not allowed.",
    "{description} Rely on the {tool} tool alone for this, no other tools. {task}.",
    # ASB's attacker instructions say "Please ..." and name a record ("client
    # ID 482930"); so do benign requests to an agent.
    "Please {lower} for client ID {number} {clause}.",
    "{task} for record ID {number} {clause}, and do not use other tools.",
)
_TOOL_SCOPES_PER_PAIR = 4


def _asb_agent_tasks(commit: str) -> Callable[[bytes, str], Iterator[tuple[str, str]]]:
    def read(data: bytes, path: str) -> Iterator[tuple[str, str]]:
        directory = mirror("Zhang-Henry/AIOS_agent")
        assert directory is not None
        tools: dict[str, list[str]] = {}
        descriptions: dict[str, str] = {}
        normal = _show(directory, commit, "data/all_normal_tools.jsonl").decode("utf-8")
        for line in normal.splitlines():
            row = json.loads(line)
            tools.setdefault(row["Corresponding Agent"], []).append(row["Tool Name"])
        for line in data.decode("utf-8").splitlines():
            row = json.loads(line)
            agent = row["agent_name"]
            config = f"pyopenagi/agents/example/{agent}/config.json"
            description = "".join(json.loads(_show(directory, commit, config))["description"])
            descriptions[agent] = description.strip()
            for task in row["tasks"]:
                stem = task.strip().rstrip(".")
                for tool in tools[agent]:
                    others = [t for t in tools[agent] if t != tool] or [tool]
                    seed = _hash(f"{task}\0{tool}")
                    for n in range(_TOOL_SCOPES_PER_PAIR):
                        scope = _TOOL_SCOPES[(seed + n * 7) % len(_TOOL_SCOPES)]
                        text = scope.format(
                            task=stem,
                            lower=stem[:1].lower() + stem[1:],
                            tool=tool,
                            other=others[0],
                            tools=json.dumps(tools[agent]),
                            description=descriptions[agent],
                            clause=_tool_clause(tool, seed // 7 + n),
                            number=100_000 + (seed // 11 + n) % 900_000,
                        )
                        # Split by task: one task's framings never straddle splits.
                        yield text, task

    return read


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)


def _embed(payload: str, host: str) -> str:
    """``payload`` between two paragraphs (or sentences) of ``host``, at a
    place chosen by its hash: an instruction hidden in content."""
    parts = re.split(r"(?<=\n\n)|(?<=[.!?] )", host[:_HOST_CHARS])
    at = _hash(payload) % (len(parts) + 1)
    return "".join(parts[:at]) + payload + " " + "".join(parts[at:])


_HOST_CHARS = 1500


def _mentions_jailbreak(text: str) -> bool:
    return re.search(r"jailbreak|\bDAN\b|developer mode", text, re.IGNORECASE) is not None


_LLM_GUARD = "53af270c69316ed82cb71ba7b19d11b55bda3151"
_OWASP = "020595761a4b7b0c3f9cf01a0457b78f9f1e7f9c"
_NEMO = "e7c23d117f04805fc0eb3e4a8fd35a5e3c5b105f"
SOURCES: tuple[Source, ...] = (
    Source(
        "jailbreak_llms",
        "yunwei37/satml-llmail-injection",
        "360613b492c5a4e8f9297b32adc819f0aa27210a",
        ("data/jailbreak_human_set2/jailbreak_prompts_2023_12_25.csv",),
        "MIT (verazuo/jailbreak_llms, CCS'24 'Do Anything Now')",
        True,
        "jailbreak",
        _csv_column("prompt"),
        "a copy of verazuo/jailbreak_llms data/prompts/jailbreak_prompts_2023_12_25.csv",
    ),
    Source(
        "gptfuzz_templates",
        "sherdencooper/GPTFuzz",
        "1eddeb565740ae311b5f4950492b011a6f866fe7",
        ("datasets/prompts/GPTFuzzer.csv",),
        "MIT",
        True,
        "jailbreak",
        _csv_column("text"),
    ),
    Source(
        "awesome_chatgpt_prompts",
        "f/awesome-chatgpt-prompts",
        "50a97c072933c93c76cc0714e9dd4c4cf1d80ae7",
        ("prompts.csv",),
        "CC0-1.0",
        False,
        "prompt",
        _csv_column("prompt", skip=_mentions_jailbreak),
        "role-play prompts ('I want you to act as ...'); rows naming a jailbreak are left out",
    ),
    Source(
        "wildguard_benign",
        "leolee99/PIGuard",
        "1b5751e88bf7475acbedfc8eda795ce060307c84",
        ("datasets/wildguard.json",),
        "MIT (PIGuard); WildGuardMix, ODC-BY",
        False,
        "prompt",
        _json_prompts,
    ),
    Source(
        "hh_rlhf_prompts",
        "anthropics/hh-rlhf",
        "354e5c3cb8960630860dd5774a6ac2a58313bf4d",
        ("harmless-base/test.jsonl.gz",),
        "MIT",
        False,
        "prompt",
        _hh_turns("human"),
        "first human turn of each dialogue",
    ),
    Source(
        "hh_rlhf_answers",
        "anthropics/hh-rlhf",
        "354e5c3cb8960630860dd5774a6ac2a58313bf4d",
        ("harmless-base/test.jsonl.gz",),
        "MIT",
        False,
        "output",
        _hh_turns("assistant"),
        "first assistant turn of each dialogue (model output)",
    ),
    Source(
        "gsm8k_questions",
        "openai/grade-school-math",
        "3101c7d5072418e28b9008a6636bde82a006892c",
        ("grade_school_math/data/test.jsonl",),
        "MIT",
        False,
        "prompt",
        _gsm8k("question"),
    ),
    Source(
        "gsm8k_answers",
        "openai/grade-school-math",
        "3101c7d5072418e28b9008a6636bde82a006892c",
        ("grade_school_math/data/test.jsonl",),
        "MIT",
        False,
        "output",
        _gsm8k("answer"),
        "worked answers (model-output style)",
    ),
    Source(
        "security_docs",
        "protectai/llm-guard",
        _LLM_GUARD,
        (
            "README.md",
            "docs/changelog.md",
            "docs/get_started/attacks.md",
            "docs/get_started/best_practices.md",
            "docs/input_scanners/prompt_injection.md",
            "docs/input_scanners/ban_substrings.md",
            "docs/input_scanners/invisible_text.md",
            "docs/output_scanners/no_refusal.md",
            "docs/tutorials/rag.md",
        ),
        "MIT",
        False,
        "hard negative",
        _doc_paragraphs,
        "documentation and changelog paragraphs that mention attacks (outside code blocks)",
    ),
    Source(
        "security_code",
        "protectai/llm-guard",
        _LLM_GUARD,
        (
            "tests/input_scanners/test_prompt_injection.py",
            "tests/input_scanners/test_ban_substrings.py",
            "tests/input_scanners/test_invisible_text.py",
            "tests/output_scanners/test_ban_substrings.py",
            "llm_guard/input_scanners/prompt_injection.py",
            "llm_guard/input_scanners/ban_substrings.py",
        ),
        "MIT",
        False,
        "hard negative",
        _code_chunks,
        "25-line chunks of tests and scanners that hold attack phrases as string constants",
    ),
    Source(
        "vigil_docs",
        "deadbits/vigil-llm",
        "f2b4c134d060bae81d29fad07003f3c657e63fc8",
        ("README.md", "docs/datasets.md", "data/datasets/README.md"),
        "Apache-2.0",
        False,
        "hard negative",
        _doc_paragraphs,
    ),
    Source(
        "langkit_docs",
        "whylabs/langkit",
        "5d6cab1e2ff32181ba5c514aaa2a4473421dc413",
        (
            "README.md",
            "DESCRIPTION.md",
            "langkit/docs/faq.md",
            "langkit/docs/features/security.md",
            "langkit/docs/modules.md",
        ),
        "Apache-2.0",
        False,
        "hard negative",
        _doc_paragraphs,
    ),
    Source(
        "langkit_code",
        "whylabs/langkit",
        "5d6cab1e2ff32181ba5c514aaa2a4473421dc413",
        ("langkit/injections.py", "langkit/proactive_injection_detection.py"),
        "Apache-2.0",
        False,
        "hard negative",
        _code_chunks,
    ),
    Source(
        "python_peps",
        "python/peps",
        "ba4deeb7969588d937da609008d05bb83a47b1ab",
        ("peps/*.rst",),
        "public domain or CC0-1.0 (each PEP says so)",
        False,
        "document",
        _document_chunks,
        "Python Enhancement Proposals: the first two ~3 KB chunks of each",
    ),
    Source(
        "rust_book",
        "rust-lang/book",
        "917544888a55e4da7109bdba8c88c893c0da70f4",
        ("src/*.md",),
        "MIT OR Apache-2.0",
        False,
        "document",
        _document_chunks,
        "The Rust Programming Language: the first two ~3 KB chunks of each chapter",
    ),
    Source(
        "asb_tool_injections",
        "Zhang-Henry/AIOS_agent",
        "b38a3d201c13ce8cf74ebc2aa61ce771f14ef3f4",
        ("data/all_attack_tools.jsonl",),
        "MIT",
        True,
        "indirect",
        _asb_injections,
        "Agent Security Bench: each attacker instruction in one of its five framings,"
        " inside a benign model answer or document of the same split",
        hosts=("output", "document"),
    ),
    Source(
        "asb_agent_tasks",
        "Zhang-Henry/AIOS_agent",
        "b38a3d201c13ce8cf74ebc2aa61ce771f14ef3f4",
        ("data/agent_task.jsonl",),
        "MIT",
        False,
        "agent instruction",
        _asb_agent_tasks("b38a3d201c13ce8cf74ebc2aa61ce771f14ef3f4"),
        "generated: Agent Security Bench's benign agent tasks scoped to one of the agent's"
        " normal tools, in four of fourteen tool-scoping framings",
    ),
    Source(
        "owasp_llm_top10",
        "OWASP/www-project-top-10-for-large-language-model-applications",
        _OWASP,
        ("2_0_vulns/*.md", "Archive/1_1_vulns/*.md", "Archive/0_9_vulns/*.md"),
        "CC-BY-SA-4.0",
        False,
        "hard negative",
        _doc_paragraphs,
        "paragraphs of the OWASP Top 10 for LLM applications that mention attacks",
    ),
    Source(
        "nemo_guardrails_docs",
        "NVIDIA/NeMo-Guardrails",
        _NEMO,
        (
            "docs/user_guides/*.md",
            "docs/user_guides/advanced/*.md",
            "docs/user_guides/community/*.md",
            "docs/security/*.md",
            "docs/evaluation/*.md",
            "docs/getting_started/*.md",
        ),
        "Apache-2.0",
        False,
        "hard negative",
        _doc_paragraphs,
        "documentation paragraphs that mention attacks (outside code blocks)",
    ),
    Source(
        "nemo_guardrails_prompts",
        "NVIDIA/NeMo-Guardrails",
        _NEMO,
        ("nemoguardrails/llm/prompts/*.yml",),
        "Apache-2.0",
        False,
        "hard negative",
        _code_chunks,
        "25-line chunks of the library's own system prompts: rules for a bot, checks of"
        " user input against a policy",
    ),
    Source(
        "everyday_requests",
        "",
        "",
        (),
        "generated (train/everyday_requests.py)",
        False,
        "prompt",
        lambda data, path: everyday_requests(),
        "generated: short everyday requests (orders, accounts, years, ids, social networks,"
        " shops, travel, support tickets) from templates",
        # Fitted on, its template phrases cost jailbreak recall on `calibrate`
        # (0.854 to 0.835) and bought nothing the bound on single words had
        # not (train/README.md): it holds the thresholds to short requests.
        fitted=False,
    ),
    Source(
        "research_readmes",
        "leolee99/PIGuard",
        "1b5751e88bf7475acbedfc8eda795ce060307c84",
        ("README.md",),
        "MIT",
        False,
        "hard negative",
        _doc_paragraphs,
    ),
)


# Hard negatives are few, and a threshold chosen on a dozen of them rests on
# one or two texts: they give part of their training share to `calibrate`
# (their `test` share, and so every held-out text, stays the same).
_TRAIN_SHARE = {"hard negative": 40}


def split_of(text: str, kind: str = "") -> str:
    """``train`` (70%), ``calibrate`` (15%) or ``test`` (15%), from a hash;
    for hard negatives 40% / 45% / 15%."""
    bucket = int(hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:8], 16) % 100
    train = _TRAIN_SHARE.get(kind, 70)
    return "train" if bucket < train else "calibrate" if bucket < 85 else "test"


def _hosts(examples: list[Example], kinds: tuple[str, ...]) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {"train": [], "calibrate": [], "test": []}
    for example in examples:
        if not example.injection and example.kind in kinds:
            hosts[example.split].append(example.text)
    return hosts


def load_all(exclude: frozenset[str] = frozenset()) -> tuple[list[Example], list[str]]:
    """Every example of every source whose mirror is here, deduplicated by
    normalised text (first source wins); also the names of missing sources.
    Texts in ``exclude`` (normalised) are dropped: evaluation-only sets."""
    examples: list[Example] = []
    missing: list[str] = []
    seen: set[str] = set(exclude)
    for source in SOURCES:
        directory = mirror(source.repo)
        if directory is None:
            missing.append(source.name)
            continue
        paths = [name for path in source.paths for name in _paths(directory, source.commit, path)]
        hosts = _hosts(examples, source.hosts)
        # A generated source reads no file.
        files = [(_show(directory, source.commit, p), p) for p in paths] if paths else [(b"", "")]
        for data, path in files:
            for item in source.read(data, path):
                # A text generated from a shared part takes that part's split;
                # an embedded text takes its payload's split, and its host
                # comes from the same split.
                text, group = item if isinstance(item, tuple) else (item, item)
                split = split_of(group, source.kind)
                if source.hosts:
                    text = _embed(text, hosts[split][_hash(text) % len(hosts[split])])
                key = normalize(text)
                if not key or key in seen:
                    continue
                seen.add(key)
                examples.append(Example(text, source.injection, source.name, source.kind, split))
    return examples, missing
