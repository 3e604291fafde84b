//! Parity with fastText's C++ (the `fasttext` crate, fastText 0.9.2's code) on lid.176.ftz:
//! every label and every probability bit for bit, for k = -1, k = 1, k = 3 above a
//! threshold, the cheap best label, and each label's one-path probability — on real
//! documents, short multilingual lines, and edge cases. Each text is read both as one
//! document (newlines as spaces, as the `language` stage reads it) and as a raw line.

mod common;

use common::{Parity, data_dir, lid_model, read_zst_jsonl};
use primer_fasttext::Model;

#[test]
fn edge_cases_and_scripts_match_cpp() {
    let path = lid_model();
    let model = Model::load(&path).unwrap();
    let mut p = Parity::new(&model, &path);
    let long_ascii = "a".repeat(100_000);
    let long_accents = "é".repeat(30_000);
    let long_cjk = "中文字符".repeat(5_000);
    let many_words = "the ".repeat(20_000);
    let texts: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("space", " ".into()),
        ("newline", "\n".into()),
        ("newlines", "\n\n\n".into()),
        ("tabs", "\t\t".into()),
        ("crlf", "\r\n".into()),
        ("cr only", "hello\rworld\r".into()),
        ("vt ff", "\x0bhello\x0cworld\x0b".into()),
        ("nul", "\0".into()),
        ("nul inside", "hello\0world\0 wie geht es dir".into()),
        ("one letter", "a".into()),
        ("eos token", "</s>".into()),
        ("eos inside", "bonjour tout le monde </s> hello everyone".into()),
        ("label token", "__label__en".into()),
        ("label words", "__label__de das ist ein Test __label__xx".into()),
        ("leading newline", "\nDies ist ein deutscher Satz.".into()),
        ("newline inside", "Ceci est une phrase.\nThis is a sentence.".into()),
        ("tab separated", "column\tanother\tcolonne\tSpalte".into()),
        ("long ascii word", long_ascii),
        ("long accented word", long_accents),
        ("long cjk run", long_cjk),
        ("many words", many_words),
        ("replacement chars", "\u{FFFD}\u{FFFD} \u{FEFF}\u{200B} x".into()),
        ("noncharacters", "\u{FFFF} \u{10FFFF} \u{FDD0}".into()),
        ("combining", "e\u{301}e\u{301} a\u{308}o\u{308}u\u{308}".into()),
        ("nbsp ideographic space", "un\u{a0}deux\u{3000}三".into()),
        ("digits", "12345 67890 3.14159".into()),
        ("punctuation", "!!! ??? ... --- ;;;".into()),
        ("url", "https://docs.python.org/3/library/functions.html#print".into()),
        ("emoji", "😀😃😄 👍🏽 🇫🇷".into()),
        ("code", "def f(x):\n    return x ** 2  # square\n".into()),
        ("en", "The quick brown fox jumps over the lazy dog.".into()),
        ("de", "Der schnelle braune Fuchs springt über den faulen Hund.".into()),
        ("fr", "Le vif renard brun saute par-dessus le chien paresseux.".into()),
        ("es", "El veloz murciélago hindú comía feliz cardillo y kiwi.".into()),
        ("it", "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!".into()),
        ("pt", "Luís argüia à Júlia que «brações, fé, chá, óxido, pôr, zângão» eram palavras do português.".into()),
        ("nl", "Pa's wijze lynx bezag vroom het fikse aquaduct.".into()),
        ("pl", "Pchnąć w tę łódź jeża lub ośm skrzyń fig.".into()),
        ("cs", "Příliš žluťoučký kůň úpěl ďábelské ódy.".into()),
        ("tr", "Pijamalı hasta yağız şoföre çabucak güvendi.".into()),
        ("ru", "Съешь же ещё этих мягких французских булок, да выпей чаю.".into()),
        ("uk", "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!".into()),
        ("el", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.".into()),
        ("ar", "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق".into()),
        ("he", "דג סקרן שט בים מאוכזב ולפתע מצא חברה".into()),
        ("fa", "این یک جمله به زبان فارسی است.".into()),
        ("hi", "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम".into()),
        ("bn", "আমি বাংলায় গান গাই।".into()),
        ("ta", "தமிழ் ஒரு அழகான மொழி.".into()),
        ("th", "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า".into()),
        ("zh", "我能吞下玻璃而不伤身体。".into()),
        ("ja", "いろはにほへと ちりぬるを わかよたれそ つねならむ".into()),
        ("ko", "다람쥐 헌 쳇바퀴에 타고파".into()),
        ("vi", "Tôi có thể ăn thủy tinh mà không hại gì.".into()),
        ("ka", "მინას ვჭამ და არა მტკივა.".into()),
        ("hy", "Կրնամ ապակի ուտել և ինծի անհանգիստ չըներ։".into()),
        ("am", "ብርጭቆ መብላት እችላለሁ፣ አይጎዳኝም።".into()),
        ("mixed scripts", "Hello Привет 你好 مرحبا שלום こんにちは".into()),
        ("label-like prefix", "__label__".into()),
        ("spaces around", "   Guten Morgen   ".into()),
    ];
    for (id, text) in &texts {
        p.check(id, text);
    }
    p.finish("lid.176 edge cases and scripts");
}

#[test]
fn real_documents_match_cpp() {
    let Some(data) = data_dir() else {
        return;
    };
    let path = lid_model();
    let model = Model::load(&path).unwrap();
    let mut p = Parity::new(&model, &path);
    let corpora = data.join("corpora");
    // Documentation pages: Python, PostgreSQL, Django, and the Debian handbook in 26
    // languages (often still English).
    let docs = read_zst_jsonl(
        &corpora.join("docs-pages-extracted.jsonl.zst"),
        1,
        usize::MAX,
    );
    for (id, text) in &docs {
        p.check(id, text);
    }
    // Code: every 10th Python file of the standard library; kernel reStructuredText.
    for (id, text) in read_zst_jsonl(
        &corpora.join("cpython-stdlib-9-versions.jsonl.zst"),
        10,
        usize::MAX,
    ) {
        p.check(&id, &text);
    }
    for (id, text) in read_zst_jsonl(
        &corpora.join("linux-kernel-docs-rst.jsonl.zst"),
        4,
        usize::MAX,
    ) {
        p.check(&id, &text);
    }
    // Short multilingual lines: every line of one handbook page per language.
    let mut seen = std::collections::BTreeSet::new();
    let mut lines = 0;
    for (id, text) in &docs {
        let Some(lang) = id
            .strip_prefix("debian-handbook:")
            .and_then(|path| path.split("/html/").nth(1))
            .and_then(|rest| rest.split('/').next())
        else {
            continue;
        };
        if !seen.insert(lang.to_string()) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            p.check(&format!("{id} line {}", i + 1), line);
            lines += 1;
        }
    }
    eprintln!(
        "{} documentation pages, {} lines of handbook pages in {} languages",
        docs.len(),
        lines,
        seen.len()
    );
    assert!(p.texts >= 5_000, "only {} texts", p.texts);
    p.finish("lid.176 on real documents");
}
