import spacy, re, json
from spacy.lang.char_classes import UNITS, LIST_UNITS
nlp = spacy.blank("en")
rules = nlp.tokenizer.rules
sp = {}
for k, v in rules.items():
    if re.fullmatch(r"[a-z0-9]+", k):
        toks = [d[65] if 65 in d else d.get("ORTH") for d in v]
        sp[k] = [t for t in toks]
print(len(rules), len(sp))
units = [u for u in UNITS.split("|")]
print(units)
json.dump({"special": sp, "units": units}, open("spacy_tables.json","w"))
print(list(sp.items())[:40])
