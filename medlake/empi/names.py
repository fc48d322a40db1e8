"""Chinese-specific name handling: pinyin with heteronyms, surname readings, pinyin/English name entry.

A name becomes comparable *keys* ``surname|given`` in toneless pinyin (``ü`` written ``v``):

* 张三 → ``{"zhang|san"}``; heteronyms give one key per reading combination (capped), so two names agree when
  their key SETS intersect — 曾 zeng/ceng, 重 zhong/chong;
* surnames with a special reading use it (单 shan, 曾 zeng, 解 xie, 区 ou, 仇 qiu, 朴 piao …), compound
  surnames (欧阳, 司马 …) count as one surname;
* Latin entries ("Zhang San", "ZHANG SAN", "San Zhang", "Zhang Sanfeng") yield keys with either the first or the
  last token as surname, so given-name-first English order still meets the Chinese form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice, product

from pypinyin import Style, pinyin

__all__ = ["COMPOUND_SURNAMES", "SURNAME_READINGS", "NameKeys", "char_readings", "name_keys"]

# Surnames read differently from the character's common reading (百家姓 usage).
SURNAME_READINGS: dict[str, str] = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "仇": "qiu", "朴": "piao", "查": "zha", "盖": "ge",
    "覃": "qin", "尉": "wei", "乐": "yue", "翟": "zhai", "召": "shao", "缪": "miao", "繁": "po", "员": "yun",
    "种": "chong", "黑": "he", "万": "wan", "秘": "bi", "长": "chang", "纪": "ji", "任": "ren", "华": "hua",
    "沈": "shen", "尹": "yin", "薄": "bo", "过": "guo", "隗": "wei", "句": "gou", "都": "du", "宿": "su",
    "藏": "zang", "能": "nai", "蕃": "pi", "柏": "bai", "重": "chong", "贾": "jia", "折": "she", "澹台": "tantai",
    "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun", "单于": "chanyu", "令狐": "linghu",
}
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "令狐",
    "澹台", "万俟", "单于", "轩辕", "端木", "南宫", "西门", "独孤", "百里", "呼延", "闻人", "东郭", "公羊", "钟离",
})
_MAX_KEYS = 16
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002a6df]")
_NON_LETTER = re.compile(r"[^a-z]+")
_YU_SPELLINGS = {"lyu": "lv", "nyu": "nv", "lue": "lve", "nue": "nve"}


@dataclass(frozen=True)
class NameKeys:
    """Comparable forms of one name."""

    normalized: str  # Han characters only, or lower-case Latin tokens joined by one space
    pinyin: str  # primary reading without separators, e.g. "zhangsan"
    keys: tuple[str, ...]  # "surname|given" keys; two names agree when these intersect
    surnames: tuple[str, ...]  # possible surname readings

    @property
    def key(self) -> str:
        """The primary key (first of ``keys``), for blocking."""
        return self.keys[0] if self.keys else ""


@lru_cache(maxsize=65536)
def char_readings(char: str) -> tuple[str, ...]:
    """Toneless readings of one Han character, most common first (``ü`` as ``v``)."""
    readings = pinyin(char, style=Style.NORMAL, heteronym=True, errors="ignore")
    return tuple(dict.fromkeys(readings[0])) if readings and readings[0] else ()


def _split_surname(han: str) -> tuple[str, str]:
    if len(han) > 2 and han[:2] in COMPOUND_SURNAMES:
        return han[:2], han[2:]
    return han[:1], han[1:]


@lru_cache(maxsize=4096)
def _surname_readings(surname: str) -> tuple[str, ...]:
    if surname in SURNAME_READINGS:
        return (SURNAME_READINGS[surname],)
    combos = product(*(char_readings(c) or (c,) for c in surname))
    return tuple("".join(c) for c in islice(combos, _MAX_KEYS))


@lru_cache(maxsize=262144)
def _given_readings(given: str) -> tuple[str, ...]:
    """Reading combinations of a given name (cached: given names repeat far more than full names)."""
    given_options = [char_readings(c) or (c,) for c in given]
    return tuple("".join(c) for c in islice(product(*given_options), _MAX_KEYS)) or ("",)


def _han_keys(han: str) -> NameKeys:
    surname, given = _split_surname(han)
    surnames = _surname_readings(surname)
    givens = _given_readings(given)
    keys = tuple(dict.fromkeys(f"{s}|{g}" for s in surnames for g in givens))[:_MAX_KEYS]
    return NameKeys(normalized=han, pinyin=keys[0].replace("|", ""), keys=keys, surnames=surnames)


def _latin_tokens(text: str) -> list[str]:
    text = text.lower().replace("ü", "v").replace("u:", "v")
    return [_YU_SPELLINGS.get(t, t) for t in _NON_LETTER.split(text) if t]


def _latin_keys(tokens: list[str]) -> NameKeys:
    if len(tokens) == 1:
        keys: tuple[str, ...] = (f"{tokens[0]}|",)
        surnames: tuple[str, ...] = (tokens[0],)
    else:
        first = f"{tokens[0]}|{''.join(tokens[1:])}"
        last = f"{tokens[-1]}|{''.join(tokens[:-1])}"
        keys = tuple(dict.fromkeys((first, last)))
        surnames = tuple(dict.fromkeys((tokens[0], tokens[-1])))
    return NameKeys(normalized=" ".join(tokens), pinyin="".join(tokens), keys=keys, surnames=surnames)


@lru_cache(maxsize=262144)
def name_keys(raw: str | None) -> NameKeys | None:
    """Comparable keys for a name in Han characters, pinyin or English; ``None`` for an empty name."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    han = "".join(_HAN.findall(text))
    if han:
        return _han_keys(han)
    tokens = _latin_tokens(text)
    return _latin_keys(tokens) if tokens else None
