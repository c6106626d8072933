"""From a lid.176 label to the metadata language code a text is matched with (MetaCLIP 2, curation spec 3).

Metadata lists are named by Wikipedia language codes (`en.json`, `zh.json`, ...). fastText's lid.176 was trained
on Wikipedia, so 174 of its 176 labels are already Wikipedia codes; two are not. An empty or unknown label maps
to None: such a text has no metadata language and is counted and dropped.
"""

from __future__ import annotations

import re

# Every label of lid.176 (tests read them from the model file and compare).
LID_LABELS = frozenset("""
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy da de
diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id ie ilo
io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms
mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn
sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf
yi yo yue zh
""".split())

# The labels whose Wikipedia differs: Chavacano (cbk-zam.wikipedia.org), Cantonese (zh-yue.wikipedia.org).
LID_TO_WIKIPEDIA = {"cbk": "cbk-zam", "yue": "zh-yue"}

# What a metadata file name may be: a Wikipedia-style code, lowercase letters with optional "-suffix" parts.
CODE_PATTERN = re.compile(r"[a-z]{2,3}(?:-[a-z]{2,8})*")


def metadata_code(label: str | None) -> str | None:
    """The metadata language code of a lid.176 label; None for an empty or unknown label."""
    if not label or label not in LID_LABELS:
        return None
    return LID_TO_WIKIPEDIA.get(label, label)


# lid.176 label -> metadata code, for a Spark map expression over the `lang` column of extracted pairs.
LABEL_TO_CODE = {label: metadata_code(label) for label in sorted(LID_LABELS)}


def is_metadata_code(code: str) -> bool:
    return CODE_PATTERN.fullmatch(code) is not None


def reachable_codes() -> frozenset[str]:
    """The codes some lid.176 label maps to: a list under any other code is reached only by a pool's lang column."""
    return frozenset(LABEL_TO_CODE.values())
