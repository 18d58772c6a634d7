"""Tables for the matching normalisers: legal forms and abbreviations.

Entries are written in the normalised token form that :mod:`hub.identifiers.normalise`
produces before it looks them up: ASCII, casefolded, dotted initials joined (``S.A.`` ->
``sa``), runs of single letters joined (``A / S`` -> ``as``), ``&`` and ``+`` written ``and``.
Adding a legal form is adding a line here; the tests cover a sample of each language.
"""

from __future__ import annotations

#: Legal forms written in their own script, removed wherever they stand before
#: transliteration (CJK names have no spaces, so they could not be cut off afterwards).
#: Longest first, so that 股份有限公司 is removed whole.
NATIVE_LEGAL_FORMS: tuple[str, ...] = (
    # Chinese (simplified and traditional)
    "股份有限公司", "有限责任公司", "有限責任公司", "有限公司", "股份公司",
    # Japanese
    "株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "(株)", "(有)",
    # Korean
    "유한책임회사", "주식회사", "유한회사", "합자회사", "합명회사", "(주)", "(유)",
)

#: Native legal forms removed only at the end of a name (too general elsewhere).
NATIVE_SUFFIX_FORMS: tuple[str, ...] = ("公司",)

#: Cyrillic legal forms, removed as whole words before transliteration (after it, ``AO``
#: would be indistinguishable from initials such as in "A.O. Smith").
CYRILLIC_LEGAL_FORMS: tuple[str, ...] = (
    "ООО", "ОАО", "ЗАО", "ПАО", "АО", "НАО", "ИП", "ОДО", "ЧП", "ЧУП", "УП",  # noqa: RUF001 (RU, BY)
    "ТОВ", "ПАТ", "ПРАТ", "ПП", "ФОП",  # noqa: RUF001 (UA)
    "ТОО", "АҚ",  # noqa: RUF001 (KZ)
    "ЕООД", "ООД", "ЕАД", "АД",  # BG
    "ДОО", "ДООЕЛ",  # RS, MK
)

_SUFFIX_FORMS_TEXT = """
    ltd; limited; llc; inc; incorporated; corp; corporation; co; company; cos; plc; llp; lp;
    lllp; pllc; pc; pty; pty ltd; proprietary limited; pte; pte ltd; private limited; pvt;
    pvt ltd; private ltd; co ltd; company limited; co limited; co inc; co llc; and co;
    and company; and co ltd; and co inc; opc; pcl; public co ltd; public company limited;
    sdn bhd; sendirian berhad; bhd; berhad; tbk; persero tbk;
    gmbh; mbh; gesmbh; ges mbh; ag; kg; kgaa; ohg; gbr; ug; ug haftungsbeschrankt; eg; ev;
    se; gmbh and co kg; gmbh and co; gmbh and co ohg; ag and co kg; ag and co; and co kg;
    co kg; gmbh and cokg;
    sa; sas; sasu; sarl; eurl; sca; snc; sci; scs; selarl; et cie; and cie; cie;
    spa; srl; srls; sapa; scarl; scrl; soc coop;
    sl; slu; sa de cv; sab de cv; sapi de cv; s de rl de cv; s de rl; sociedad anonima;
    ltda; cia ltda; y cia; cia; sac; saa; eirl; lda; unipessoal lda; eireli;
    bv; nv; vof; cv; bvba; cvba; commv; sprl;
    ab; ab publ; publ; oy; oyj; as; asa; aps; is; hf; ehf; ky; hb; kb;
    sp z oo; sp zoo; spzoo; sp k; sp j; spk; spj; sc;
    sro; spol sro; spol s ro; vos; ks; akciova spolecnost;
    kft; zrt; nyrt; bt; kkt; rt;
    doo; dd; ad;
    ae; epe; ike; oe; ee;
    ltd sti; sti; anonim sirketi; limited sirketi;
    ooo; oao; zao; pao; jsc; ojsc; cjsc; pjsc; tov;
    kk; kabushiki kaisha; kabushikigaisha; kabushiki gaisha; yk; yugen kaisha; godo kaisha;
    gk; goshi kaisha; gomei kaisha;
    youxian gongsi; youxiangongsi; gufen youxian gongsi; youxian zeren gongsi; gongsi;
    jusighoesa; jusik hoesa; chusik hoesa; jusikhoesa; yuhan hoesa;
    wll; fze; fzco; fzc; fz llc; fzllc; sal; saog; saoc; bsc; bscc; qsc; qpsc; psc; sae
"""

#: Legal forms removed from the end of a name, as token tuples.
SUFFIX_LEGAL_FORMS: frozenset[tuple[str, ...]] = frozenset(
    tuple(entry.split()) for entry in _SUFFIX_FORMS_TEXT.replace("\n", " ").split(";")
    if entry.strip()
)

#: Legal forms (and articles) removed from the start of a name.
PREFIX_LEGAL_FORMS: frozenset[tuple[str, ...]] = frozenset(
    tuple(entry.split())
    for entry in (
        "the", "pt", "cv", "ooo", "oao", "zao", "pao", "jsc", "ojsc", "cjsc", "pjsc", "tov",
        "llc", "kabushiki kaisha", "kabushikigaisha", "kabushiki gaisha", "yugen kaisha",
        "jusighoesa", "jusik hoesa", "chusik hoesa",
    )
)

#: Abbreviations and variants in company names, mapped to one canonical token.
NAME_ABBREVIATIONS: dict[str, str] = {
    "and": "and", "und": "and", "et": "and",
    "intl": "international", "internat": "international", "intnl": "international",
    "mfg": "manufacturing", "mfr": "manufacturing", "mfrs": "manufacturing",
    "manuf": "manufacturing", "mfrg": "manufacturing",
    "ind": "industries", "inds": "industries", "indus": "industries", "industry": "industries",
    "tech": "technology", "techn": "technology", "technologies": "technology",
    "svc": "services", "svcs": "services", "serv": "services", "service": "services",
    "sys": "systems", "system": "systems",
    "prod": "products", "prods": "products", "product": "products",
    "hldg": "holdings", "hldgs": "holdings", "holding": "holdings",
    "bros": "brothers", "bro": "brothers",
    "assoc": "associates", "assocs": "associates",
    "assn": "association", "natl": "national",
    "grp": "group", "mgmt": "management", "mgt": "management",
    "logistic": "logistics", "eng": "engineering", "engg": "engineering",
    "chem": "chemicals", "chemical": "chemicals",
    "pharma": "pharmaceuticals", "pharmaceutical": "pharmaceuticals",
    "trdg": "trading", "equip": "equipment", "transp": "transport",
    "transportation": "transport", "lab": "laboratories", "labs": "laboratories",
    "laboratory": "laboratories", "univ": "university", "dev": "development",
    "mktg": "marketing", "ctr": "centre", "center": "centre", "coop": "cooperative",
    "elec": "electric", "electrical": "electric",
}

#: Street words mapped to a canonical abbreviation (USPS Publication 28 style in English).
STREET_ABBREVIATIONS: dict[str, str] = {
    "street": "st", "str": "str", "strasse": "str", "strase": "str", "straat": "str",
    "road": "rd", "avenue": "ave", "av": "ave", "avda": "ave", "avenida": "ave",
    "boulevard": "blvd", "boul": "blvd", "blv": "blvd", "drive": "dr", "drv": "dr",
    "lane": "ln", "court": "ct", "place": "pl", "platz": "pl", "square": "sq",
    "highway": "hwy", "hiway": "hwy", "parkway": "pkwy", "pkway": "pkwy",
    "expressway": "expy", "freeway": "fwy", "terrace": "ter", "circle": "cir",
    "crescent": "cres", "suite": "ste", "floor": "fl", "flr": "fl", "building": "bldg",
    "bld": "bldg", "apartment": "apt", "room": "rm", "department": "dept",
    "north": "n", "south": "s", "east": "e", "west": "w", "northeast": "ne",
    "northwest": "nw", "southeast": "se", "southwest": "sw", "saint": "st", "fort": "ft",
    "mount": "mt", "calle": "c", "chemin": "ch", "route": "rte", "viale": "vle",
    "piazza": "pza", "industrial": "ind", "estate": "est", "centre": "ctr", "center": "ctr",
}

#: German and Dutch street-name endings shortened inside compound words.
STREET_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("strasse", "str"), ("strase", "str"), ("straat", "str"),
)

#: Words introducing a house number, dropped when a number follows.
HOUSE_NUMBER_WORDS: frozenset[str] = frozenset({"no", "nr", "number", "num", "nro"})

#: City-name words mapped to one spelling ("St. Louis" = "Saint Louis").
CITY_ABBREVIATIONS: dict[str, str] = {
    "st": "saint", "sankt": "saint", "ste": "sainte", "ft": "fort", "mt": "mount",
}
