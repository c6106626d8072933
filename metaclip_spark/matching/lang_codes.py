"""From a lid.176 label to the metadata list a text is matched with (MetaCLIP 2, curation spec 3).

Metadata lists are named by Wikipedia language codes (`en.json`, `zh.json`, ...). The rule is MetaCLIP 2's
(`align_lid_to_wiki.py`, `substr_matching.lid_langcode_to_metadata_langcode`):

- a lid.176 label goes to its Wikipedia edition's code: the label itself for 173 of the 176 labels, `cbk` to
  cbk-zam and `yue` to zh-yue; `lrc` has no edition in MetaCLIP 2's list of Wikipedia codes (N/A);
- a variant code merges into its prefix's list: the code up to its first "-" (the reference's `_`), so zh-yue,
  zh-classical and zh-min-nan are matched with zh.json, cbk-zam with cbk.json, be-tarask with be.json;
- an empty label, or one with no Wikipedia code, goes to the `other` list (`other.json`); a set without one
  counts such texts as without a list.
"""

from __future__ import annotations

# Every label of lid.176 (tests read them from the model file and compare).
LID_LABELS = frozenset("""
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy da de
diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id ie ilo
io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms
mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn
sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf
yi yo yue zh
""".split())

# The Wikipedia editions MetaCLIP 2 builds metadata from (its build_metadata.py's list; `_` written `-` as in the
# editions' host names, zh-yue.wikipedia.org).
WIKIPEDIA_CODES = frozenset("""
ab ace ady af als alt am ami an ang anp ar arc ary arz as ast atj av avk awa ay az azb ba ban bar bat-smg bbc bcl be
be-tarask bew bg bh bi bjn blk bm bn bo bpy br bs bug bxr ca cbk-zam cdo ce ceb ch chr chy ckb co cr crh cs csb cu
cv cy da dag de dga din diq dsb dtp dty dv dz ee el eml en eo es et eu ext fa fat ff fi fiu-vro fj fo fon fr frp frr
fur fy ga gag gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv ha hak haw he hi hif hr hsb ht hu hy hyw ia id
ie ig igl ik ilo inh io is it iu ja jam jbo jv ka kaa kab kbd kbp kcg kg ki kk kl km kn ko koi krc ks ksh ku kus kv
kw ky la lad lb lbe lez lfn lg li lij lld lmo ln lo lt ltg lv mad mai map-bms mdf mg mhr mi min mk ml mn mni mnw mr
mrj ms mt mwl my myv mzn nah nap nds nds-nl ne new nia nl nn no nov nqo nrm nso nv ny oc olo om or os pa pag pam pap
pcd pcm pdc pfl pi pih pl pms pnb pnt ps pt pwn qu rm rmy rn ro roa-rup roa-tara ru rue rw sa sah sat sc scn sco sd
se sg sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq su sv sw szl szy ta tay tcy te tet tg th ti tk
tl tly tn to tpi tr trv ts tt tum tw ty tyv udm ug uk ur uz ve vec vep vi vls vo wa war wo wuu xal xh xmf yi yo za
zea zgh zh zh-classical zh-min-nan zh-yue zu
""".split())

# The lid.176 labels whose Wikipedia edition has another code: Chavacano, Cantonese.
LID_TO_WIKIPEDIA = {"cbk": "cbk-zam", "yue": "zh-yue"}

# The list of texts with no language label, or a label with no Wikipedia code (`other.json`).
OTHER = "other"


def list_code(code: str) -> str:
    """The list a Wikipedia code's texts are matched with: a variant merges into its prefix's (zh-yue -> zh)."""
    return code.replace("_", "-").split("-")[0]


def wikipedia_code(label: str | None) -> str | None:
    """The Wikipedia code of a lid.176 label; None for an empty label or one with no Wikipedia edition (N/A)."""
    if not label:
        return None
    code = LID_TO_WIKIPEDIA.get(label, label)
    return code if code in WIKIPEDIA_CODES else None


def metadata_code(label: str | None) -> str:
    """The metadata list code of a lid.176 label: its Wikipedia code merged into its prefix's, else `other`."""
    code = wikipedia_code(label)
    return list_code(code) if code is not None else OTHER


# lid.176 label -> metadata code, for a Spark map expression over the `lang` column of extracted pairs (a label
# outside it, or a null one, is `other` too).
LABEL_TO_CODE = {label: metadata_code(label) for label in sorted(LID_LABELS)}

# The names a list may have: the merged Wikipedia codes, and `other`.
LIST_CODES = frozenset(list_code(code) for code in WIKIPEDIA_CODES) | {OTHER}


def list_name_problem(code: str) -> str | None:
    """Why `code`.json cannot be a list of a worldwide set, or None when it can."""
    if code in LIST_CODES:
        return None
    if list_code(code) in LIST_CODES and list_code(code) != code:
        return (f"{code!r} is a variant code: its texts are matched with {list_code(code)}.json (MetaCLIP 2 merges "
                f"variants into their prefix's list); merge its entries into {list_code(code)}.json")
    return (f"{code!r} is not a Wikipedia language code (lowercase codes such as en, zh, ja, or 'other': name the "
            "lists <code>.json)")
