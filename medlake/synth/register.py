"""A patient register with known truth, straight into a frame in the DWD ``patient`` shape, for linking the EMPI
against (its tests and ``python -m medlake.bench empi``) without generating whole deliveries.

Duplicates carry the errors linkage must survive: homophone
and typo characters, pinyin/English name entry (either order), swapped ID digits, legacy 15-digit IDs,
lower-case ``x``, missing fields, moved addresses and new phones; twins share birth date, address, phone and
surname but not given name or ID.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from medlake.empi.names import char_readings
from medlake.identifiers import check_char

__all__ = ["SyntheticRegister", "synthetic_register"]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤单解查"
)
_COMPOUND = ("欧阳", "司马", "诸葛", "上官")
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛"
    "艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨"
    "瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽重行长乐朝"
)
_REGIONS = (
    "330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112", "330122", "330127",
    "330182", "330183", "330185", "330201", "330203", "330205", "330206", "330211", "330212", "330226",
    "110101", "110102", "110105", "110106", "110108", "310101", "310104", "310105", "440103", "440104",
)
_STREETS = ("文一路", "文二路", "天目山路", "延安路", "解放路", "庆春路", "凤起路", "体育场路", "莫干山路", "西湖大道")
_INSTITUTIONS = tuple(f"H3301020000{i}" for i in range(1, 9))


@dataclass(frozen=True)
class SyntheticRegister:
    """Records in the DWD ``patient`` shape plus ``institution_code``; truth maps records to persons."""

    records: pl.DataFrame
    truth: pl.DataFrame  # institution_code, patient_id, person_id


def _homophones() -> dict[str, list[str]]:
    by_reading: dict[str, list[str]] = {}
    for char in dict.fromkeys(_GIVEN):
        for reading in char_readings(char)[:1]:
            by_reading.setdefault(reading, []).append(char)
    return {c: [o for o in by_reading.get(char_readings(c)[0], []) if o != c] for c in _GIVEN if char_readings(c)}


def _latin(name: str, rng: random.Random) -> str:
    surname = name[:2] if name[:2] in _COMPOUND else name[:1]
    s = "".join(char_readings(c)[0] for c in surname) if surname != "单" else "shan"
    s = {"曾": "zeng", "解": "xie", "查": "zha", "覃": "qin", "单": "shan"}.get(surname, s)
    g = "".join(char_readings(c)[0] for c in name[len(surname):])
    style = rng.randrange(3)
    if style == 0:
        return f"{s.title()} {g.title()}"
    if style == 1:
        return f"{s.upper()} {g.upper()}"
    return f"{g.title()} {s.title()}"


class _Person:
    __slots__ = ("address", "birth", "id18", "name", "phone", "region", "sex")

    def __init__(self, rng: random.Random, twin_of: _Person | None = None) -> None:
        if twin_of is None:
            self.region = rng.choice(_REGIONS)
            self.birth = date(1930, 1, 1) + timedelta(days=rng.randrange(33000))
            self.sex = rng.choice("12")
            seq = rng.randrange(0, 998, 2) + (1 if self.sex == "1" else 0)
            surname = rng.choice(_COMPOUND) if rng.random() < 0.01 else rng.choice(_SURNAMES)
            self.phone = "1" + rng.choice("3578") + "".join(rng.choices("0123456789", k=9))
            street, no, block = rng.choice(_STREETS), rng.randrange(1, 400), rng.randrange(1, 30)
            self.address = f"{street}{no}号{block}幢{rng.randrange(101, 2800)}室"
        else:
            self.region, self.birth = twin_of.region, twin_of.birth
            self.phone, self.address = twin_of.phone, twin_of.address
            self.sex = rng.choice("12")
            seq = (int(twin_of.id18[14:17]) // 2 * 2 + 2) % 998 + (1 if self.sex == "1" else 0)
            surname = twin_of.name[:2] if twin_of.name[:2] in _COMPOUND else twin_of.name[:1]
        given = "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2, 2))))
        if twin_of is not None:
            while given == twin_of.name[len(surname):]:
                given = "".join(rng.choices(_GIVEN, k=2))
        self.name = surname + given
        first17 = f"{self.region}{self.birth:%Y%m%d}{seq:03d}"
        self.id18 = first17 + check_char(first17)


def _variant(p: _Person, rng: random.Random, homophones: dict[str, list[str]]) -> dict[str, str | None]:
    name: str | None = p.name
    r = rng.random()
    if r < 0.10:
        pos = rng.randrange(1, len(p.name))
        options = homophones.get(p.name[pos]) or list(_GIVEN)
        name = p.name[:pos] + rng.choice(options) + p.name[pos + 1:]
    elif r < 0.18:
        name = _latin(p.name, rng)
    elif r < 0.19:
        name = None
    id_number: str | None = p.id18
    r = rng.random()
    if r < 0.10:
        id_number = None
    elif r < 0.15:
        i = rng.randrange(6, 16)
        id_number = p.id18[:i] + p.id18[i + 1] + p.id18[i] + p.id18[i + 2:]
    elif r < 0.20 and p.birth.year < 2000:
        id_number = p.id18[:6] + p.id18[8:17]
    elif r < 0.25 and p.id18.endswith("X"):
        id_number = p.id18[:17] + "x"
    birth = f"{p.birth:%Y-%m-%d}"
    if rng.random() < 0.03:
        birth = f"{p.birth:%Y-%m}-{min(28, p.birth.day + 1):02d}"
    phone: str | None = p.phone
    r = rng.random()
    if r < 0.15:
        phone = "1" + rng.choice("3578") + "".join(rng.choices("0123456789", k=9))
    elif r < 0.25:
        phone = None
    address: str | None = p.address
    r = rng.random()
    if r < 0.15:
        address = p.address.split("幢")[0] + "幢"
    elif r < 0.25:
        address = None
    sex: str | None = p.sex if rng.random() > 0.02 else None
    return {"name": name, "id_number": id_number, "birth_date": birth, "sex_code": sex, "phone": phone,
            "address": address}


def synthetic_register(
    n_records: int, *, duplicate_rate: float = 0.3, twin_rate: float = 0.01, seed: int = 7, start_person: int = 0
) -> SyntheticRegister:
    """About ``n_records`` records of ``n_records / (1 + duplicate_rate)`` persons (twins included)."""
    rng = random.Random(seed)
    homophones = _homophones()
    rows: list[dict[str, str | None]] = []
    truth: list[tuple[str, str, str]] = []
    person_no = start_person
    while len(rows) < n_records:
        person = _Person(rng)
        people = [person]
        if rng.random() < twin_rate:
            people.append(_Person(rng, twin_of=person))
        for p in people:
            if len(rows) >= n_records:
                break
            person_no += 1
            copies = 1 + (1 if rng.random() < duplicate_rate else 0)
            copies += 1 if copies == 2 and rng.random() < 0.2 else 0
            for copy in range(copies):
                if len(rows) >= n_records:
                    break
                institution = rng.choice(_INSTITUTIONS)
                patient_id = f"P{seed}{len(rows):09d}"
                fields = (
                    {"name": p.name, "id_number": p.id18, "birth_date": f"{p.birth:%Y-%m-%d}", "sex_code": p.sex,
                     "phone": p.phone, "address": p.address}
                    if copy == 0 else _variant(p, rng, homophones)
                )
                rows.append({
                    "institution_code": institution, "patient_id": patient_id, **fields,
                    "region_code": p.region, "updated_at": f"2024-{rng.randrange(1, 13):02d}-01 08:00:00",
                })
                truth.append((institution, patient_id, f"PER{person_no:09d}"))
    records = pl.DataFrame(rows, schema={
        "institution_code": pl.Utf8, "patient_id": pl.Utf8, "name": pl.Utf8, "id_number": pl.Utf8,
        "birth_date": pl.Utf8, "sex_code": pl.Utf8, "phone": pl.Utf8, "address": pl.Utf8,
        "region_code": pl.Utf8, "updated_at": pl.Utf8,
    }).with_columns(pl.col("birth_date").str.to_date(strict=False))
    shuffled = records.sample(fraction=1.0, shuffle=True, seed=seed)
    return SyntheticRegister(
        records=shuffled,
        truth=pl.DataFrame(truth, schema=["institution_code", "patient_id", "person_id"], orient="row"),
    )
