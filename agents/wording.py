"""What a run says to the person who asked: the steps in plain words, and reasons without internal names.

The pages, the API, the command line and notifications all show a run's status and reason; these
are the words they share. The steps keep neutral labels ("Design the API", "Build"); a reason never
names the pipeline's parts (its agents, the built-in designer, the model behind it) or a phase's
internal name.
"""

from __future__ import annotations

import re

# What each step of a run is called wherever a run is shown.
PHASE_LABELS = {
    "exploration": "Explore the data",
    "architecture": "Design the API",
    "security": "Security review",
    "implementation": "Build",
    "testing": "Test on live data",
    "documentation": "Document",
    "learning": "Learn for next time",
}
# What the run was doing in each step, to say where it stopped ("while designing the API").
PHASE_DOING = {
    "exploration": "looking through the data",
    "architecture": "designing the API",
    "security": "reviewing the design's security",
    "implementation": "building the query",
    "testing": "testing it on live data",
    "documentation": "writing the documentation",
    "learning": "learning for next time",
}


def phase_label(phase: str) -> str:
    return PHASE_LABELS.get(phase or "", phase or "")


def phase_doing(phase: str) -> str:
    """'while designing the API', or '' for no phase."""
    doing = PHASE_DOING.get(phase or "")
    return f"while {doing}" if doing else ""


# Internal names of the pipeline's parts, as a business user would say them. Longer phrases first.
_PLAIN_WORDS = [
    (re.compile(r"^\s*the \w+ could not get an answer from the language model:\s*", re.I), ""),
    (re.compile(r"\bthe offline planner\b", re.I), "the built-in designer"),
    (re.compile(r"\boffline (planner|provider)\b", re.I), "built-in designer"),
    (re.compile(r"\bthe planner\b", re.I), "Nectar"),
    (re.compile(r"\bplanner\b", re.I), "designer"),
    (re.compile(r"\b(an? )?LLM provider\b", re.I), "an AI model provider"),
    (re.compile(r"\blanguage[- ]models?\b", re.I), "AI model"),
    (re.compile(r"\bLLMs?\b"), "AI model"),
    (re.compile(r"\bthe security agent\b", re.I), "the security review"),
    (re.compile(r"\bsecurity agent\b", re.I), "security review"),
    (re.compile(r"\bthe architect\b", re.I), "the design step"),
    (re.compile(r"\barchitecture\b", re.I), "design"),
    (re.compile(r"\barchitects?\b", re.I), "designer"),
    (re.compile(r"\bthe implementer\b", re.I), "the build step"),
    (re.compile(r"\bimplementers?\b", re.I), "builder"),
    (re.compile(r"\bthe explorer\b", re.I), "the look at the data"),
    (re.compile(r"\bexplorers?\b", re.I), "data search"),
    (re.compile(r"\bthe tester\b", re.I), "the testing step"),
    (re.compile(r"\btesters?\b", re.I), "tests"),
    (re.compile(r"\bthe documenter\b", re.I), "the documentation step"),
    (re.compile(r"\bdocumenters?\b", re.I), "documentation"),
]


def plain_words(text: str) -> str:
    """A reason in the words of the person who asked: no agent, model or designer names."""
    original = str(text or "")
    text = original
    for pattern, words in _PLAIN_WORDS:
        text = pattern.sub(words, text)
    text = text.strip()
    if text != original.strip() and text:
        text = text[:1].upper() + text[1:]  # it may now start mid-sentence
    return text
