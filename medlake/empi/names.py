"""Chinese-specific name handling: pinyin with heteronyms, surname readings, pinyin/English name entry.

A name becomes comparable *keys* ``surname|given`` in toneless pinyin (``ü`` written ``v``):

* 张三 → ``{"zhang|san"}``; heteronyms give one key per reading combination (capped), so two names agree when
  their key SETS intersect — 曾 zeng/ceng, 重 zhong/chong;
* surnames with a special reading use it (单 shan, 曾 zeng, 解 xie, 区 ou, 仇 qiu, 朴 piao …), compound
  surnames (欧阳, 司马 …) count as one surname;
* Latin entries ("Zhang San", "ZHANG SAN", "San Zhang", "Zhang Sanfeng") yield keys with either the first or the
  last token as surname, so given-name-first English order still meets the Chinese form; pinyin written as one
  word ("zhangsan", "ZhangSan", "sanzhang") is cut into syllables first;
* traditional characters are read as simplified (偉 → 伟, 輝 → 辉), so the Han forms also agree exactly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice, product

from pypinyin import Style, pinyin

__all__ = [
    "COMPOUND_SURNAMES", "SURNAME_READINGS", "NameKeys", "char_readings", "name_keys", "pinyin_syllables", "simplified",
]

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
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LONGEST_SYLLABLE = 6  # zhuang, shuang, chuang


@dataclass(frozen=True)
class NameKeys:
    """Comparable forms of one name."""

    normalized: str  # Han characters only, or lower-case Latin tokens joined by one space
    pinyin: str  # primary reading without separators, e.g. "zhangsan"
    keys: tuple[str, ...]  # "surname|given" keys; two names agree when these intersect
    surnames: tuple[str, ...]  # possible surname readings

    @property
    def key(self) -> str:
        """The primary key (first of ``keys``)."""
        return self.keys[0] if self.keys else ""

    @property
    def blocking_key(self) -> str:
        """The primary key with its two parts in sorted order, for blocking: "Wei Zhang" typed given name first
        meets 张伟."""
        return "|".join(sorted(self.key.split("|"))) if self.keys else ""


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


@lru_cache(maxsize=65536)
def simplified(han: str) -> str:
    """Han text in simplified characters (traditional ones converted; zhconv's zh-cn table)."""
    import zhconv

    return str(zhconv.convert(han, "zh-cn"))


@lru_cache(maxsize=1)
def pinyin_syllables() -> frozenset[str]:
    """Every toneless Mandarin syllable pypinyin knows (``ü`` as ``v``), vowel-bearing ones only."""
    from pypinyin.pinyin_dict import pinyin_dict

    found: set[str] = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            bare = "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))
            bare = bare.replace("ü", "v").replace("u\u0308", "v")
            if bare.isascii() and bare.isalpha() and any(v in bare for v in "aeiouv"):
                found.add(bare)
    return frozenset(found)


def _syllables(word: str) -> list[str] | None:
    """``word`` cut into the fewest pinyin syllables (None when it is not pinyin)."""
    known = pinyin_syllables()
    best: list[list[str] | None] = [[]] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - _LONGEST_SYLLABLE), end):
            head = best[start]
            if head is not None and word[start:end] in known and (best[end] is None or len(head) + 1 < len(best[end])):
                best[end] = [*head, word[start:end]]
    return best[len(word)]


def _latin_tokens(text: str) -> list[str]:
    text = _CAMEL.sub(" ", text).lower().replace("ü", "v").replace("u:", "v")
    return [_YU_SPELLINGS.get(t, t) for t in _NON_LETTER.split(text) if t]


@lru_cache(maxsize=1)
def _compound_readings() -> frozenset[str]:
    return frozenset(r for s in COMPOUND_SURNAMES for r in _surname_readings(s))


def _one_word_keys(word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Keys of pinyin written as one word: the first syllable (or a compound surname's two) or the last one as
    surname; a word that is not pinyin is one surname-less token."""
    parts = _syllables(word)
    if not parts or len(parts) < 2:
        return (f"{word}|",), (word,)
    splits = [(parts[0], "".join(parts[1:])), (parts[-1], "".join(parts[:-1]))]
    if len(parts) > 2 and parts[0] + parts[1] in _compound_readings():
        splits.insert(0, (parts[0] + parts[1], "".join(parts[2:])))
    keys = tuple(dict.fromkeys(f"{s}|{g}" for s, g in splits))
    return keys, tuple(dict.fromkeys(s for s, _ in splits))


def _latin_keys(tokens: list[str]) -> NameKeys:
    if len(tokens) == 1:
        keys, surnames = _one_word_keys(tokens[0])
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
    han = simplified("".join(_HAN.findall(text)))
    if han:
        return _han_keys(han)
    tokens = _latin_tokens(text)
    return _latin_keys(tokens) if tokens else None
