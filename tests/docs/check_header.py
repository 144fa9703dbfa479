#!/usr/bin/env python3
"""header_manual: include/tern.h reads like a manual.

- It is cut into sections (tools/header_sections.rs): each opens with a banner, a title
  and a paragraph; the "Sections" list at the top names them all, in order; no item is
  left in a section "Other" (declared outside src/ffi/).
- The error codes are in one place: every TERN_E* code is in the section "Errors".
- Every function's comment says on which thread it may be called ("Loop thread",
  "Any thread", ...).

usage: check_header.py include/tern.h
"""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
failures = []
banner = re.compile(r"/\* =+\n \* (.+)\n \*\n((?: \*(?: .*)?\n)+?) \* =+ \*/\n")
found = [(m.start(), m.group(1), m.group(2)) for m in banner.finditer(text)]
titles = [t for _, t, _ in found]
if len(titles) < 10:
    failures.append(f"expected a section per concept, found {len(titles)}: {titles}")
listed = re.search(r"/\* Sections, in reading order:(.*?)\*/", text, re.S)
if not listed:
    failures.append("no 'Sections, in reading order' list at the top")
else:
    names = [n.strip(" .\n*") for n in re.sub(r"\n \*", " ", listed.group(1)).split(";")]
    if names != titles:
        failures.append(f"the list at the top {names} is not the sections {titles}")
if "Other" in titles:
    failures.append("items outside src/ffi/ ended in the section 'Other'")
for _, title, para in found:
    if len(para.strip(" *\n")) < 40:
        failures.append(f"section {title!r} has no paragraph")

def section_of(pos):
    prior = [t for start, t, _ in found if start < pos]
    return prior[-1] if prior else None

for m in re.finditer(r"^#define (TERN_E[A-Z]+) ", text, re.M):
    if section_of(m.start()) != "Errors":
        failures.append(f"{m.group(1)} is in section {section_of(m.start())!r}, not 'Errors'")

functions = 0
for chunk in text.split("\n\n"):
    lines = chunk.strip().split("\n")
    decl = [l for l in lines if not l.startswith("/*") and not l.startswith(" *")]
    if not decl or decl[0].startswith(("#", "typedef", "}")) or "(" not in decl[0]:
        continue
    functions += 1
    doc = " ".join(l for l in lines if l.startswith(" *")).lower()
    if "thread" not in doc:
        failures.append(f"the comment of `{decl[0]}` does not say on which thread")

print(f"{len(titles)} sections: {'; '.join(titles)}; {functions} functions")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
