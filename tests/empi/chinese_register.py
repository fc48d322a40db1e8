"""An independent Chinese patient register with known truth: a TEST set for the EMPI, never a tuning set.

It lives under tests/ on purpose: the matcher (medlake.empi) must not import it, and it shares no code or word
list with the matcher or with medlake's own generators (medlake.empi.synthetic, medlake.synth); only pypinyin
is used, for romanising names the way a clerk would type them. Its error model is its own:

* households: two parents (different surnames), children with the father's surname, sometimes a grandparent;
  all share the home address and the landline, children's records carry a parent's mobile;
* infants registered under a parent's ID number before they get their own; twins (same birth date, address and
  phones, different given names, consecutive ID sequence numbers);
* names in simplified Han, traditional Han (偉/伟, 輝/辉 …), pinyin with or without spaces, either order, upper
  or title case; given-name characters replaced by homophones (伟/维/玮 …);
* birth dates as ``1986年6月3日``, ``19860603``, ``1986-06-03``, ``1986/6/3``, with day and month swapped, or
  missing;
* phones as ``+86 138 1234 5678``, ``138-1234-5678``, ``86-13812345678``, landlines ``0571-88123456`` or
  ``(0571)88123456``; a new mobile now and then;
* addresses with or without the province/city/district prefix, full-width digits, ``3幢``/``3栋``/``3号楼``,
  with or without the unit and room; a move now and then;
* ID numbers missing, in the legacy 15-digit form, with one wrong digit, or with a lower-case ``x``.

Write a file for ``medlake empi evaluate``::

    python -m tests.empi.chinese_register /tmp/zh.csv --persons 20000
    medlake empi evaluate /tmp/zh.csv --truth person_id \\
        --map record_id=record_id,name=name,id_number=id_number,birth_date=birth_date,sex=sex,phone=phone,address=address
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from pypinyin import Style, lazy_pinyin

__all__ = ["ZH_MAP", "Person", "chinese_register"]

ZH_MAP = "record_id=record_id,name=name,id_number=id_number,birth_date=birth_date,sex=sex,phone=phone,address=address"

# (province, city, district, district code, landline area code)
_PLACES = (
    ("浙江省", "杭州市", "西湖区", "330106", "0571"), ("浙江省", "杭州市", "拱墅区", "330105", "0571"),
    ("浙江省", "宁波市", "鄞州区", "330212", "0574"), ("浙江省", "温州市", "鹿城区", "330302", "0577"),
    ("江苏省", "南京市", "玄武区", "320102", "025"), ("江苏省", "苏州市", "姑苏区", "320508", "0512"),
    ("广东省", "广州市", "天河区", "440106", "020"), ("广东省", "深圳市", "南山区", "440305", "0755"),
    ("四川省", "成都市", "武侯区", "510107", "028"), ("湖北省", "武汉市", "洪山区", "420111", "027"),
    ("山东省", "济南市", "历下区", "370102", "0531"), ("河南省", "郑州市", "金水区", "410105", "0371"),
)
_ROADS = ("人民路", "解放路", "建设路", "中山路", "和平路", "新华路", "胜利路", "长江路", "黄河路", "光明街",
          "学院路", "朝阳路", "幸福路", "青年路", "东风路", "南京路", "花园街", "迎宾大道", "滨江路", "文化路")
_ESTATES = ("阳光花园", "翠苑小区", "金色家园", "碧水苑", "东方名苑", "绿城", "锦绣新村", "和谐家园", "", "")
_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何",
             "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "韩", "冯", "于", "董", "萧", "程", "曹", "袁", "邓",
             "许", "傅", "沈", "曾", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "魏", "薛", "叶", "阎", "欧阳")
# homophone groups: a clerk hearing the name may write any member
_HOMOPHONES = (
    "伟维玮卫", "丽莉俐", "明鸣铭", "华桦骅", "静婧靖", "芳方芬", "杰洁捷", "涛滔韬", "婷亭庭", "燕艳雁", "勇永咏",
    "磊蕾垒", "斌彬滨", "红虹宏", "玲琳凌", "霞侠", "平萍苹", "刚钢纲", "辉晖徽", "鹏朋", "飞菲非", "宇雨羽禹",
    "欣新鑫馨", "浩昊皓", "子紫梓", "涵晗寒", "轩萱宣", "怡仪宜", "军君", "建健剑", "国帼", "龙珑", "志智", "文雯",
)
_GIVEN = "".join(_HOMOPHONES) + "秀英敏强洋艳娟超兰桂玉梅云雪荣爱春海波健成东晨瑞佳嘉琪思睿博航"
_TRADITIONAL = dict(zip("伟维丽华红凤龙国军辉鹏飞刚杰涛玲艳燕兰云东宁庆爱荣张刘陈杨赵吴郑谢邓韩冯苏蒋贾叶阎萧",
                        "偉維麗華紅鳳龍國軍輝鵬飛剛傑濤玲豔燕蘭雲東寧慶愛榮張劉陳楊趙吳鄭謝鄧韓馮蘇蔣賈葉閻蕭",
                        strict=True))
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_TODAY = date(2026, 6, 30)


def _check(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


@dataclass
class Person:
    person_id: str
    surname: str
    given: str
    sex: str  # "1" male, "2" female
    birth: date
    id18: str
    mobile: str | None
    household: Household
    parents: list[Person] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.surname + self.given


@dataclass
class Household:
    place: tuple[str, str, str, str, str]
    road: str
    number: int
    estate: str
    building: int
    unit: int
    room: int
    landline: str | None
    members: list[Person] = field(default_factory=list)


class _Population:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sequence: dict[tuple[str, date], int] = {}
        self.people: list[Person] = []

    def _id(self, region: str, birth: date, sex: str) -> str:
        seq = self.sequence.get((region, birth), self.rng.randrange(10, 400))
        seq += 1 if (seq % 2 == 1) != (sex == "1") else 2  # odd for men, even for women
        self.sequence[(region, birth)] = seq
        first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
        return first17 + _check(first17)

    def _mobile(self) -> str:
        return "1" + self.rng.choice(("38", "39", "58", "59", "86", "87", "35", "36", "77", "99")) + "".join(
            self.rng.choices("0123456789", k=8))

    def _given(self) -> str:
        return "".join(self.rng.choices(_GIVEN, k=self.rng.choice((1, 2, 2, 2, 2))))

    def person(self, household: Household, surname: str, birth: date, sex: str | None = None,
               given: str | None = None) -> Person:
        sex = sex or self.rng.choice("12")
        adult = (_TODAY - birth).days > 18 * 365
        p = Person(
            person_id=f"Z{len(self.people) + 1:07d}", surname=surname, given=given or self._given(), sex=sex,
            birth=birth, id18=self._id(household.place[3], birth, sex),
            mobile=self._mobile() if adult and self.rng.random() < 0.9 else None, household=household,
        )
        self.people.append(p)
        household.members.append(p)
        return p

    def household(self) -> Household:
        rng = self.rng
        place = rng.choice(_PLACES)
        house = Household(
            place=place, road=rng.choice(_ROADS), number=rng.randrange(1, 600), estate=rng.choice(_ESTATES),
            building=rng.randrange(1, 40), unit=rng.randrange(1, 6), room=rng.randrange(1, 30) * 100 + rng.randrange(1, 5),
            landline=f"{place[4]}{rng.randrange(2, 9)}{rng.randrange(0, 10 ** 7):07d}" if rng.random() < 0.5 else None,
        )
        father_birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 58))
        father = self.person(house, rng.choice(_SURNAMES), father_birth, "1")
        if rng.random() < 0.85:
            mother_birth = father_birth + timedelta(days=rng.randrange(-4 * 365, 3 * 365))
            mother = self.person(house, rng.choice(_SURNAMES), mother_birth, "2")
            parents = [father, mother]
        else:
            parents = [father]
        if rng.random() < 0.15:  # a grandparent lives with them
            self.person(house, rng.choice(_SURNAMES), father_birth - timedelta(days=rng.randrange(20 * 365, 35 * 365)))
        for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
            earliest = father_birth + timedelta(days=20 * 365)
            span = (_TODAY - earliest).days
            if span <= 0:
                break
            birth = earliest + timedelta(days=rng.randrange(span))
            child = self.person(house, father.surname, birth)
            child.parents = parents
            if rng.random() < 0.03:  # twins: same birth date, different given name
                given = self._given()
                while given == child.given:
                    given = self._given()
                twin = self.person(house, father.surname, birth, given=given)
                twin.parents = parents
        return house


# ------------------------------------------------------------------------------------------------- record variants

def _pinyin(p: Person, rng: random.Random) -> str:
    surname = "".join(lazy_pinyin(p.surname, style=Style.NORMAL))
    surname = {"曾": "zeng", "单": "shan"}.get(p.surname, surname)
    given = "".join(lazy_pinyin(p.given, style=Style.NORMAL))
    form = rng.randrange(5)
    if form == 0:
        return f"{surname.title()} {given.title()}"
    if form == 1:
        return f"{surname.upper()} {given.upper()}"
    if form == 2:
        return f"{given.title()} {surname.title()}"
    if form == 3:
        return f"{surname}{given}"
    return f"{surname.title()}{given.title()}"


def _name(p: Person, rng: random.Random) -> str | None:
    roll = rng.random()
    given = p.given
    if roll < 0.12:  # homophone
        pos = rng.randrange(len(given))
        group = next((g for g in _HOMOPHONES if given[pos] in g), None)
        if group:
            given = given[:pos] + rng.choice([c for c in group if c != given[pos]]) + given[pos + 1:]
    elif roll < 0.20:
        return "".join(_TRADITIONAL.get(c, c) for c in p.name)
    elif roll < 0.30:
        return _pinyin(p, rng)
    elif roll < 0.31:
        return None
    return p.surname + given


def _birth(d: date, rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    if roll < 0.07 and d.day <= 12 and d.day != d.month:  # day and month swapped
        d = date(d.year, d.day, d.month)
    form = rng.randrange(5)
    return (f"{d.year}年{d.month}月{d.day}日", f"{d:%Y%m%d}", f"{d:%Y-%m-%d}", f"{d.year}/{d.month}/{d.day}",
            f"{d:%Y/%m/%d}")[form]


def _id(p: Person, rng: random.Random, infant_under: Person | None) -> str | None:
    if infant_under is not None:
        return infant_under.id18
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.20 and p.birth.year < 2000:
        return p.id18[:6] + p.id18[8:17]
    if roll < 0.25:
        pos = rng.randrange(6, 17)
        wrong = rng.choice([d for d in "0123456789" if d != p.id18[pos]])
        return p.id18[:pos] + wrong + p.id18[pos + 1:]
    if p.id18.endswith("X") and roll < 0.5:
        return p.id18[:17] + "x"
    return p.id18


def _phone_text(number: str, rng: random.Random) -> str:
    if len(number) == 11 and number.startswith("1"):
        return rng.choice((number, f"+86 {number[:3]} {number[3:7]} {number[7:]}", f"{number[:3]}-{number[3:7]}-"
                           f"{number[7:]}", f"86-{number}", f"+86{number}"))
    area = next(pl[4] for pl in _PLACES if number.startswith(pl[4]))
    local = number[len(area):]
    return rng.choice((f"{area}-{local}", f"({area}){local}", number, f"+86 {area[1:]} {local}"))


def _phone(p: Person, rng: random.Random) -> str | None:
    choices = [n for n in (p.mobile, p.household.landline) if n]
    if not p.mobile:  # a child: a parent's mobile
        choices += [q.mobile for q in p.parents if q.mobile]
    if not choices or rng.random() < 0.12:
        return None
    number = rng.choice(choices)
    if rng.random() < 0.08:  # a new mobile
        number = "1" + rng.choice("35789") + "".join(rng.choices("0123456789", k=9))
    return _phone_text(number, rng)


def _address(h: Household, rng: random.Random) -> str | None:
    if rng.random() < 0.08:
        return None
    province, city, district = h.place[:3]
    prefix = rng.choice((f"{province}{city}{district}", f"{city}{district}", district, "",
                         f"{province[:-1]}{city[:-1]}{district}"))
    building = rng.choice((f"{h.building}幢", f"{h.building}栋", f"{h.building}号楼"))
    unit = rng.choice((f"{h.unit}单元", "")) if rng.random() < 0.8 else ""
    room = rng.choice((f"{h.room}室", f"{h.room}", "")) if rng.random() < 0.9 else ""
    text = f"{prefix}{h.road}{h.number}号{h.estate}{building}{unit}{room}"
    if rng.random() < 0.15:
        text = text.translate(_FULL_WIDTH)
    return text


def _sex(p: Person, rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.04:
        return None
    return rng.choice((p.sex, "男" if p.sex == "1" else "女", "M" if p.sex == "1" else "F"))


def chinese_register(persons: int = 20_000, *, seed: int = 86, copies_mean: float = 1.68) -> pl.DataFrame:
    """Records of about ``persons`` people, each in one to four records (``copies_mean`` on average):
    record_id, person_id (truth), household_id, hospital, name, id_number, birth_date, sex, phone, address."""
    rng = random.Random(seed)
    population = _Population(rng)
    households: list[Household] = []
    while len(population.people) < persons:
        households.append(population.household())
    rows: list[dict[str, str | None]] = []
    extra = max(0.0, copies_mean - 1.0)
    for number, house in enumerate(households):
        moved = _address(Household(**{**house.__dict__, "road": rng.choice(_ROADS), "members": []}), rng)
        for p in house.members:
            count = 1 + sum(rng.random() < extra / 3 for _ in range(3))
            infant = (_TODAY - p.birth).days < 2 * 365 and p.parents
            for copy in range(count):
                guardian = rng.choice(p.parents) if infant and copy == 0 and rng.random() < 0.7 else None
                rows.append({
                    "record_id": f"R{len(rows) + 1:08d}", "person_id": p.person_id, "household_id": f"H{number:07d}",
                    "hospital": f"H{rng.randrange(1, 9)}", "name": _name(p, rng),
                    "id_number": _id(p, rng, guardian), "birth_date": _birth(p.birth, rng), "sex": _sex(p, rng),
                    "phone": _phone(p, rng),
                    "address": moved if copy and rng.random() < 0.05 else _address(house, rng),
                })
    frame = pl.DataFrame(rows, schema={c: pl.Utf8 for c in rows[0]})
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.empi.chinese_register", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=86)
    args = parser.parse_args(argv)
    frame = chinese_register(args.persons, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(args.out)
    print(f"{frame.height} records of {frame['person_id'].n_unique()} persons → {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
