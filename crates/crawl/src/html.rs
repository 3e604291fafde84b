//! HTML to main-content text, in one streaming pass over html5gum's tokens.
//!
//! The page is cut into *blocks* (paragraphs, headings, list items, table rows, code
//! blocks) as its elements open and close; no tree is built. Boilerplate is dropped as it
//! opens: scripts, styles, navigation, headers, footers and asides outside the content, sidebars,
//! cookie banners, share and comment widgets, hidden elements — by tag, by ARIA role, and
//! by `class`/`id` words in the spirit of trafilatura's discard rules. Elements that mark
//! main content (trafilatura's content-area rules, in its order: article-body classes,
//! `<article>`, story classes, `#content`-like areas, `<main>` and `role=main`) are
//! recorded as block ranges; after the pass the best tier with enough text is kept. With
//! none, every block is kept except link lists (more than half their text in links).
//!
//! Text is whitespace-collapsed, except inside `<pre>`: code keeps every space, newline
//! and indentation, and syntax highlighting's spans are just text to it. Blocks are
//! separated by a blank line; items of one list and rows of one table by a newline;
//! list items start with `- ` (or `N. ` in ordered lists), table cells are joined by
//! ` | `.

use html5gum::{Emitter, State as TokenizerState};

/// Settings of the extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Keep tables (rows as lines, cells joined by ` | `).
    pub tables: bool,
    /// Collect every `<a href>` of the page, furniture included (for a crawler).
    pub links: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            tables: true,
            links: false,
        }
    }
}

/// What [`extract`] found in a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The main content as text; empty when the page has none.
    pub text: String,
    /// `<title>`, whitespace-collapsed.
    pub title: Option<String>,
    /// `<html lang>`.
    pub lang: Option<String>,
    /// `<link rel=canonical href>`, as written.
    pub canonical: Option<String>,
    /// How the content area was chosen: the rule's name, or `whole page`.
    pub area: &'static str,
    /// With [`ExtractOptions::links`]: the `href` of every `<a>`, as written, in order.
    pub links: Vec<String>,
    /// `<base href>`, as written: what relative links are relative to.
    pub base: Option<String>,
}

/// Extract the main content of an HTML page.
pub fn extract(html: &str, options: &ExtractOptions) -> Extracted {
    let mut state = State::new(*options);
    for _ in html5gum::Tokenizer::new_with_emitter(html, &mut state) {}
    state.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Html,
    Head,
    Body,
    Title,
    Meta,
    Link,
    A,
    Br,
    Pre,
    P,
    Heading,
    Li,
    Ul,
    Ol,
    Dl,
    DtDd,
    Table,
    Tr,
    Cell,
    Div,
    Section,
    Article,
    Main,
    Header,
    Footer,
    Aside,
    /// Other block-level elements: a block starts and ends with them.
    Block,
    /// Elements whose content is never text to keep.
    Skip,
    /// Elements with no content (`img`, `input`, …).
    Void,
    /// Block-level void elements (`hr`).
    VoidBlock,
    Inline,
}

fn tag_of(name: &[u8]) -> Tag {
    match name {
        b"html" => Tag::Html,
        b"head" => Tag::Head,
        b"body" => Tag::Body,
        b"title" => Tag::Title,
        b"meta" => Tag::Meta,
        b"link" => Tag::Link,
        b"a" => Tag::A,
        b"br" => Tag::Br,
        b"pre" | b"listing" | b"xmp" | b"plaintext" => Tag::Pre,
        b"p" => Tag::P,
        b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" => Tag::Heading,
        b"li" => Tag::Li,
        b"ul" | b"menu" | b"dir" => Tag::Ul,
        b"ol" => Tag::Ol,
        b"dl" => Tag::Dl,
        b"dt" | b"dd" => Tag::DtDd,
        b"table" => Tag::Table,
        b"tr" => Tag::Tr,
        b"td" | b"th" => Tag::Cell,
        b"div" => Tag::Div,
        b"section" => Tag::Section,
        b"article" => Tag::Article,
        b"main" => Tag::Main,
        b"header" => Tag::Header,
        b"footer" => Tag::Footer,
        b"aside" => Tag::Aside,
        b"address" | b"blockquote" | b"center" | b"details" | b"summary" | b"fieldset"
        | b"figure" | b"figcaption" | b"form" | b"hgroup" | b"caption" | b"legend" | b"thead"
        | b"tbody" | b"tfoot" | b"dialog" => Tag::Block,
        b"script" | b"style" | b"noscript" | b"template" | b"nav" | b"iframe" | b"object"
        | b"embed" | b"svg" | b"math" | b"canvas" | b"video" | b"audio" | b"map" | b"button"
        | b"select" | b"textarea" | b"datalist" | b"noembed" | b"noframes" | b"frameset"
        | b"applet" => Tag::Skip,
        b"img" | b"input" | b"area" | b"base" | b"col" | b"param" | b"source" | b"track"
        | b"wbr" | b"keygen" | b"frame" => Tag::Void,
        b"hr" => Tag::VoidBlock,
        _ => Tag::Inline,
    }
}

impl Tag {
    fn is_block(self) -> bool {
        !matches!(
            self,
            Tag::Inline | Tag::A | Tag::Void | Tag::Br | Tag::Cell | Tag::Skip | Tag::Title
        )
    }
}

/// ARIA roles of page furniture.
const SKIP_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "menu",
    "menubar",
    "toolbar",
    "dialog",
    "alertdialog",
];

/// `class` words and `id`s that are furniture wherever they are.
const SKIP_WORDS: &[&str] = &[
    "nav",
    "navbar",
    "menu",
    "sidebar",
    "footer",
    "breadcrumb",
    "breadcrumbs",
    "headerlink",
    "hidden",
    "d-none",
    "sr-only",
    "visually-hidden",
    "screen-reader-text",
    "noprint",
    "no-print",
    "ad",
    "ads",
    "advert",
    "advertisement",
    "sponsored",
    "share",
    "sharing",
    "social",
    "related",
    "comments",
    "pagination",
    "pager",
    "skip-link",
    "cookie-banner",
];

/// Parts of `class` words and `id`s that mark furniture on containers (`div`,
/// `section`, lists, …), as trafilatura's substring rules do.
const SKIP_PARTS: &[&str] = &[
    "sidebar",
    "navbar",
    "navigation",
    "breadcrumb",
    "bread-crumb",
    "cookie",
    "consent",
    "newsletter",
    "social",
    "share",
    "related",
    "footer",
    "comment",
    "advert",
    "sponsor",
    "popup",
    "modal",
    "skip-link",
    "pagination",
    "toolbar",
    "banner",
    "subscribe",
    "masthead",
    "promo",
    "widget",
    "-nav",
    "nav-",
    "menu",
];

/// Content-area rules, best first, after trafilatura's `BODY_XPATH`: tier 1 article
/// bodies, 2 `<article>`, 3 story areas, 4 `#content`-like areas, 5 `<main>` and
/// `role=main`.
const AREA_NAMES: [&str; 6] = [
    "whole page",
    "article body class",
    "<article>",
    "story class",
    "content area",
    "<main> or role=main",
];

const TIER1_PARTS: &[&str] = &[
    "entry-content",
    "article-content",
    "art-content",
    "article__content",
    "article-body",
    "articlebody",
    "article_body",
    "post-content",
    "post_content",
    "postcontent",
    "post-body",
    "post-text",
    "post_text",
    "post-entry",
    "text-content",
    "body-text",
    "markdown-body",
    "rst-content",
    "theme-doc-markdown",
    "md-content",
];
const TIER3_PARTS: &[&str] = &[
    "story-body",
    "story-content",
    "storycontent",
    "blog-content",
    "section-content",
    "single-content",
    "single-post",
    "main-column",
    "field-body",
    "fulltext",
];
const TIER4_PARTS: &[&str] = &[
    "main-content",
    "maincontent",
    "page-content",
    "content-main",
    "content-body",
    "contentbody",
    "docs-content",
    "doc-content",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Class,
    Id,
    Role,
    Lang,
    AriaHidden,
    Style,
    Rel,
    Href,
    Itemprop,
    Other,
}

#[derive(Debug, Default)]
struct Attrs {
    class: String,
    id: String,
    role: String,
    lang: String,
    aria_hidden: String,
    style: String,
    rel: String,
    href: String,
    itemprop: String,
    hidden: bool,
}

impl Attrs {
    fn clear(&mut self) {
        for s in [
            &mut self.class,
            &mut self.id,
            &mut self.role,
            &mut self.lang,
            &mut self.aria_hidden,
            &mut self.style,
            &mut self.rel,
            &mut self.href,
            &mut self.itemprop,
        ] {
            s.clear();
        }
        self.hidden = false;
    }
    fn slot(&mut self, a: Attr) -> Option<&mut String> {
        Some(match a {
            Attr::Class => &mut self.class,
            Attr::Id => &mut self.id,
            Attr::Role => &mut self.role,
            Attr::Lang => &mut self.lang,
            Attr::AriaHidden => &mut self.aria_hidden,
            Attr::Style => &mut self.style,
            Attr::Rel => &mut self.rel,
            Attr::Href => &mut self.href,
            Attr::Itemprop => &mut self.itemprop,
            Attr::Other => return None,
        })
    }
}

/// A tag name packed for comparison: its first 15 bytes and its length.
type NameKey = [u8; 16];

fn name_key(name: &[u8]) -> NameKey {
    let mut k = [0u8; 16];
    let n = name.len().min(15);
    k[..n].copy_from_slice(&name[..n]);
    k[15] = name.len().min(255) as u8;
    k
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    tag: Tag,
    name: NameKey,
    skip: bool,
    /// The content area this element opens, if any (index into `regions`).
    region: Option<usize>,
    /// For lists and tables: a number that tells this one from others (blocks of one
    /// list or table are joined by a newline).
    group: u32,
    /// For ordered lists: the next item's number.
    counter: u32,
    /// Cells seen in this row (for `tr`).
    cells: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Pre,
}

#[derive(Debug)]
struct Block {
    text: String,
    kind: Kind,
    group: u32,
    /// An item of a `<ul>` or `<ol>` (not a table row).
    item: bool,
    chars: u32,
    link_chars: u32,
}

#[derive(Debug)]
struct Region {
    tier: u8,
    start: usize,
    end: usize,
}

struct State {
    options: ExtractOptions,
    tag_name: Vec<u8>,
    tag_is_end: bool,
    tag_self_closing: bool,
    last_start_tag: Vec<u8>,
    attr_name: Vec<u8>,
    attrs: Attrs,
    attr: Attr,
    /// Scratch space for lower-casing a class word.
    lower: String,
    /// Text not yet handled (see `emit_string`).
    text_buf: Vec<u8>,
    stack: Vec<Frame>,
    skip_depth: u32,
    pre_depth: u32,
    link_depth: u32,
    /// Open `<article>`, `<main>` or content areas: a `<header>` inside one is content.
    area_depth: u32,
    in_title: bool,
    title: String,
    lang: Option<String>,
    canonical: Option<String>,
    links: Vec<String>,
    base: Option<String>,
    blocks: Vec<Block>,
    cur: String,
    cur_chars: u32,
    cur_links: u32,
    cur_kind: Kind,
    cur_group: u32,
    cur_item: bool,
    /// Text waiting for the block's first character (a list item's `- `).
    cur_prefix: String,
    pending_space: bool,
    regions: Vec<Region>,
    next_group: u32,
}

/// The extractor is html5gum's emitter: the tokenizer hands it tag names, attributes and
/// text as borrowed bytes, nothing is allocated per token, and parse errors (which do
/// not change the text) are not even looked for.
impl Emitter for &mut State {
    type Token = std::convert::Infallible;

    fn set_last_start_tag(&mut self, last_start_tag: Option<&[u8]>) {
        self.last_start_tag.clear();
        self.last_start_tag
            .extend_from_slice(last_start_tag.unwrap_or_default());
    }
    fn emit_eof(&mut self) {
        self.flush_text();
    }
    fn emit_error(&mut self, _error: html5gum::Error) {}
    fn should_emit_errors(&mut self) -> bool {
        false
    }
    fn pop_token(&mut self) -> Option<Self::Token> {
        None
    }
    fn emit_string(&mut self, c: &[u8]) {
        // Consecutive pieces of text are joined first: a piece may end inside a
        // character's UTF-8 bytes.
        self.text_buf.extend_from_slice(c);
    }
    fn init_start_tag(&mut self) {
        self.flush_text();
        self.init_tag(false);
    }
    fn init_end_tag(&mut self) {
        self.flush_text();
        self.init_tag(true);
    }
    fn init_comment(&mut self) {
        self.flush_text();
    }
    fn emit_current_tag(&mut self) -> Option<TokenizerState> {
        if self.tag_is_end {
            self.last_start_tag.clear();
            let name = std::mem::take(&mut self.tag_name);
            self.end_tag(&name);
            self.tag_name = name;
            None
        } else {
            self.last_start_tag.clear();
            self.last_start_tag.extend_from_slice(&self.tag_name);
            self.start_tag(self.tag_self_closing);
            html5gum::naive_next_state(&self.last_start_tag)
        }
    }
    fn emit_current_comment(&mut self) {}
    fn emit_current_doctype(&mut self) {}
    fn set_self_closing(&mut self) {
        self.tag_self_closing = true;
    }
    fn set_force_quirks(&mut self) {}
    fn push_tag_name(&mut self, s: &[u8]) {
        self.tag_name.extend_from_slice(s);
    }
    fn push_comment(&mut self, _s: &[u8]) {}
    fn push_doctype_name(&mut self, _s: &[u8]) {}
    fn init_doctype(&mut self) {
        self.flush_text();
    }
    fn init_attribute(&mut self) {
        self.attr_name.clear();
        self.attr = Attr::Other;
    }
    fn init_attribute_value(&mut self) {
        self.resolve_attr();
    }
    fn push_attribute_name(&mut self, s: &[u8]) {
        self.attr_name.extend_from_slice(s);
        // `hidden` has no value: it counts by its name alone.
        if self.attr_name == b"hidden" {
            self.attrs.hidden = true;
        }
    }
    fn push_attribute_value(&mut self, s: &[u8]) {
        if let Some(slot) = self.attrs.slot(self.attr) {
            slot.push_str(&String::from_utf8_lossy(s));
        }
    }
    fn set_doctype_public_identifier(&mut self, _value: &[u8]) {}
    fn set_doctype_system_identifier(&mut self, _value: &[u8]) {}
    fn push_doctype_public_identifier(&mut self, _s: &[u8]) {}
    fn push_doctype_system_identifier(&mut self, _s: &[u8]) {}
    fn current_is_appropriate_end_tag_token(&mut self) -> bool {
        self.tag_is_end && !self.last_start_tag.is_empty() && self.tag_name == self.last_start_tag
    }
}

impl State {
    fn new(options: ExtractOptions) -> Self {
        State {
            options,
            tag_name: Vec::new(),
            tag_is_end: false,
            tag_self_closing: false,
            last_start_tag: Vec::new(),
            attr_name: Vec::new(),
            attrs: Attrs::default(),
            attr: Attr::Other,
            lower: String::new(),
            text_buf: Vec::new(),
            stack: Vec::with_capacity(64),
            skip_depth: 0,
            pre_depth: 0,
            link_depth: 0,
            area_depth: 0,
            in_title: false,
            title: String::new(),
            lang: None,
            canonical: None,
            links: Vec::new(),
            base: None,
            blocks: Vec::new(),
            cur: String::new(),
            cur_chars: 0,
            cur_links: 0,
            cur_kind: Kind::Text,
            cur_group: 0,
            cur_item: false,
            cur_prefix: String::new(),
            pending_space: false,
            regions: Vec::new(),
            next_group: 1,
        }
    }

    fn flush_text(&mut self) {
        if !self.text_buf.is_empty() {
            let buf = std::mem::take(&mut self.text_buf);
            self.text(&buf);
            self.text_buf = buf;
            self.text_buf.clear();
        }
    }

    fn init_tag(&mut self, end: bool) {
        self.tag_name.clear();
        self.tag_is_end = end;
        self.tag_self_closing = false;
        self.attrs.clear();
        self.attr_name.clear();
        self.attr = Attr::Other;
    }

    /// Which attribute the value about to come belongs to (the first of a name wins).
    fn resolve_attr(&mut self) {
        let a = match &self.attr_name[..] {
            b"class" => Attr::Class,
            b"id" => Attr::Id,
            b"role" => Attr::Role,
            b"lang" => Attr::Lang,
            b"aria-hidden" => Attr::AriaHidden,
            b"style" => Attr::Style,
            b"rel" => Attr::Rel,
            b"href" => Attr::Href,
            b"itemprop" => Attr::Itemprop,
            _ => Attr::Other,
        };
        self.attr = match self.attrs.slot(a) {
            Some(slot) if slot.is_empty() => a,
            _ => Attr::Other,
        };
    }

    fn start_tag(&mut self, self_closing: bool) {
        let tag = tag_of(&self.tag_name);
        match tag {
            Tag::Html => {
                if !self.attrs.lang.is_empty() && self.lang.is_none() {
                    self.lang = Some(self.attrs.lang.trim().to_string());
                }
                return;
            }
            Tag::Head | Tag::Body | Tag::Meta => return,
            Tag::Title => {
                if self.skip_depth == 0 && self.title.is_empty() {
                    self.in_title = true;
                }
                return;
            }
            Tag::Link => {
                if self.canonical.is_none()
                    && self
                        .attrs
                        .rel
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("canonical"))
                    && !self.attrs.href.trim().is_empty()
                {
                    self.canonical = Some(self.attrs.href.trim().to_string());
                }
                return;
            }
            Tag::Br => {
                if self.skip_depth == 0 {
                    self.line_break();
                }
                return;
            }
            Tag::Void => {
                if self.tag_name == b"base" && self.base.is_none() && !self.attrs.href.is_empty() {
                    self.base = Some(self.attrs.href.trim().to_string());
                }
                return;
            }
            Tag::VoidBlock => {
                if self.skip_depth == 0 {
                    self.flush();
                }
                return;
            }
            _ => {}
        }
        if tag == Tag::A && self.options.links && !self.attrs.href.trim().is_empty() {
            self.links.push(self.attrs.href.trim().to_string());
        }
        self.implicit_closes(tag);
        if self_closing && matches!(&self.tag_name[..], b"svg" | b"math") {
            return;
        }
        let skip = self.skip_depth > 0 || self.is_furniture(tag);
        let mut frame = Frame {
            tag,
            name: name_key(&self.tag_name),
            skip,
            region: None,
            group: 0,
            counter: 1,
            cells: 0,
        };
        if skip {
            self.skip_depth += 1;
            self.stack.push(frame);
            return;
        }
        if tag.is_block() {
            self.flush();
        }
        let tier = self.area_tier(tag);
        if tier > 0 {
            frame.region = Some(self.regions.len());
            self.regions.push(Region {
                tier,
                start: self.blocks.len(),
                end: usize::MAX,
            });
        }
        if tier > 0 || matches!(tag, Tag::Article | Tag::Main) {
            self.area_depth += 1;
        }
        match tag {
            Tag::Pre => self.pre_depth += 1,
            Tag::A => self.link_depth += 1,
            Tag::Ul | Tag::Ol | Tag::Table => {
                frame.group = self.next_group;
                self.next_group += 1;
            }
            Tag::Li => {
                let list = self
                    .stack
                    .iter_mut()
                    .rev()
                    .find(|f| matches!(f.tag, Tag::Ul | Tag::Ol));
                match list {
                    Some(l) if l.tag == Tag::Ol => {
                        self.cur_prefix = format!("{}. ", l.counter);
                        l.counter += 1;
                        self.cur_group = l.group;
                        self.cur_item = true;
                    }
                    Some(l) => {
                        self.cur_prefix = "- ".into();
                        self.cur_group = l.group;
                        self.cur_item = true;
                    }
                    None => self.cur_prefix = "- ".into(),
                }
            }
            Tag::Tr => {
                if let Some(t) = self.stack.iter().rev().find(|f| f.tag == Tag::Table) {
                    self.cur_group = t.group;
                }
            }
            Tag::Cell => {
                if let Some(row) = self.stack.iter_mut().rev().find(|f| f.tag == Tag::Tr) {
                    row.cells += 1;
                    if row.cells > 1 && !self.cur.is_empty() {
                        self.cur.push_str(" | ");
                        self.pending_space = false;
                    }
                }
            }
            _ => {}
        }
        if self.pre_depth > 0 {
            self.cur_kind = Kind::Pre;
        }
        self.stack.push(frame);
    }

    /// Whether an element that opens here is page furniture, not content.
    fn is_furniture(&mut self, tag: Tag) -> bool {
        match tag {
            Tag::Skip => return true,
            Tag::Table if !self.options.tables => return true,
            Tag::Footer => return true,
            // A page's header and its asides (sidebars) are furniture; inside an article
            // or content area they belong to it (an article's heading, footnotes, notes).
            Tag::Header | Tag::Aside if self.area_depth == 0 => return true,
            Tag::Main | Tag::Article => return false,
            _ => {}
        }
        if self.pre_depth > 0 {
            // Code is never furniture; its spans' classes are syntax highlighting.
            return false;
        }
        let a = &self.attrs;
        if a.hidden || a.aria_hidden.trim().eq_ignore_ascii_case("true") {
            return true;
        }
        if !a.role.is_empty()
            && SKIP_ROLES
                .iter()
                .any(|r| a.role.trim().eq_ignore_ascii_case(r))
        {
            return true;
        }
        if !a.style.is_empty() {
            let style: String = a
                .style
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            if style.contains("display:none") || style.contains("visibility:hidden") {
                return true;
            }
        }
        if a.class.is_empty() && a.id.is_empty() {
            return false;
        }
        if tag == Tag::Aside {
            // Inside the content (furniture outside it was caught above) an aside is
            // the content's own — a note, a footnote, a boxed example — whatever its
            // class calls it (Sphinx's `sidebar` directive is `<aside class="sidebar">`).
            return false;
        }
        // An `id` is often a slug of a heading (`how-do-i-share-…`): only whole
        // furniture words count there; in `class`, parts of words do on containers.
        let is_word = |w: &str| SKIP_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k));
        if !a.id.is_empty() && is_word(a.id.trim()) {
            return true;
        }
        let container = matches!(
            tag,
            Tag::Div
                | Tag::Section
                | Tag::Ul
                | Tag::Ol
                | Tag::Li
                | Tag::Header
                | Tag::Aside
                | Tag::Table
                | Tag::Block
                | Tag::Dl
        );
        let lower = &mut self.lower;
        for w in a.class.split_ascii_whitespace() {
            if is_word(w) {
                return true;
            }
            if container {
                lower.clear();
                lower.push_str(w);
                lower.make_ascii_lowercase();
                if SKIP_PARTS.iter().any(|p| lower.contains(p)) && !lower.contains("commentary") {
                    return true;
                }
            }
        }
        false
    }

    /// The content-area tier of an element that opens here (0: none).
    fn area_tier(&self, tag: Tag) -> u8 {
        let a = &self.attrs;
        if a.role.trim().eq_ignore_ascii_case("main") {
            return 5;
        }
        if a.itemprop.trim().eq_ignore_ascii_case("articleBody") {
            return 1;
        }
        if !matches!(tag, Tag::Div | Tag::Section | Tag::Article | Tag::Main) {
            return 0;
        }
        let class = a.class.to_ascii_lowercase();
        let id = a.id.to_ascii_lowercase();
        let any_part = |parts: &[&str]| parts.iter().any(|p| class.contains(p) || id.contains(p));
        if class == "post" || class == "entry" || any_part(TIER1_PARTS) {
            return 1;
        }
        if tag == Tag::Article {
            return 2;
        }
        if id == "story" || id == "article" || id.starts_with("primary") || any_part(TIER3_PARTS) {
            return 3;
        }
        if id == "content"
            || class.split_ascii_whitespace().any(|w| w == "content")
            || any_part(TIER4_PARTS)
        {
            return 4;
        }
        if tag == Tag::Main || class.starts_with("main") || id.starts_with("main") {
            return 5;
        }
        0
    }

    /// Close what a new `tag` closes implicitly (an open `<p>` before a block, an open
    /// `<li>` before the next, cells and rows, …).
    fn implicit_closes(&mut self, tag: Tag) {
        let (target, boundary): (&[Tag], &[Tag]) = match tag {
            Tag::Li => (
                &[Tag::Li],
                &[Tag::Ul, Tag::Ol, Tag::Table, Tag::Div, Tag::Section],
            ),
            Tag::DtDd => (&[Tag::DtDd], &[Tag::Dl, Tag::Table, Tag::Div, Tag::Section]),
            Tag::Tr => (&[Tag::Tr, Tag::Cell], &[Tag::Table]),
            Tag::Cell => (&[Tag::Cell], &[Tag::Tr, Tag::Table]),
            t if t.is_block() => (&[Tag::P], &[]),
            _ => return,
        };
        let mut i = self.stack.len();
        while i > 0 {
            let f = self.stack[i - 1].tag;
            if target.contains(&f) {
                self.pop_to(i - 1);
                return;
            }
            if boundary.contains(&f) || (boundary.is_empty() && f.is_block()) {
                return;
            }
            i -= 1;
        }
    }

    fn end_tag(&mut self, name: &[u8]) {
        let tag = tag_of(name);
        match tag {
            Tag::Title => {
                self.in_title = false;
                return;
            }
            Tag::Br => {
                if self.skip_depth == 0 {
                    self.line_break();
                }
                return;
            }
            Tag::Html | Tag::Head | Tag::Body | Tag::Void | Tag::VoidBlock | Tag::Meta => return,
            _ => {}
        }
        // Close the nearest open element of that name, and everything inside it. (Any
        // heading's end tag closes an open heading, as in browsers.)
        let key = name_key(name);
        let found = self
            .stack
            .iter()
            .rposition(|f| f.tag == tag && (tag == Tag::Heading || f.name == key));
        if let Some(i) = found {
            self.pop_to(i);
        }
    }

    /// Pop the frames at `i` and above, closing what they opened.
    fn pop_to(&mut self, i: usize) {
        while self.stack.len() > i {
            let f = self.stack.pop().expect("non-empty");
            if f.skip {
                self.skip_depth -= 1;
                continue;
            }
            if f.tag.is_block() {
                self.flush();
            }
            match f.tag {
                Tag::Pre => {
                    self.pre_depth -= 1;
                    if self.pre_depth == 0 {
                        self.cur_kind = Kind::Text;
                    }
                }
                Tag::A => self.link_depth -= 1,
                Tag::Li | Tag::Tr => {
                    self.cur_group = 0;
                    self.cur_item = false;
                }
                _ => {}
            }
            if let Some(r) = f.region {
                self.regions[r].end = self.blocks.len();
            }
            if f.region.is_some() || matches!(f.tag, Tag::Article | Tag::Main) {
                self.area_depth -= 1;
            }
        }
    }

    fn line_break(&mut self) {
        if self.pre_depth > 0 {
            self.cur.push('\n');
        } else if !self.cur.is_empty() && !self.cur.ends_with('\n') {
            self.cur.push('\n');
            self.pending_space = false;
        }
    }

    fn text(&mut self, value: &[u8]) {
        let s = match std::str::from_utf8(value) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(value),
        };
        if self.in_title {
            self.title.push_str(&s);
            return;
        }
        if self.skip_depth > 0 {
            return;
        }
        if self.pre_depth > 0 {
            let s: &str = if self.cur.is_empty() && self.cur_prefix.is_empty() {
                // The newline right after `<pre>` is not content (HTML's rule), and
                // neither is one right after a block boundary inside it.
                s.strip_prefix('\n').unwrap_or(&s)
            } else {
                &s
            };
            if s.is_empty() {
                return;
            }
            self.cur.push_str(s);
            let n = s.len() as u32;
            self.cur_chars += n;
            if self.link_depth > 0 {
                self.cur_links += n;
            }
            return;
        }
        // Runs of ASCII whitespace are one space (CSS `white-space: normal`; a no-break
        // space stays).
        let bytes = s.as_bytes();
        let open_line = !self.cur.is_empty() && !self.cur.ends_with('\n');
        if open_line && bytes.first().is_some_and(u8::is_ascii_whitespace) {
            self.pending_space = true;
        }
        let mut added = 0u32;
        for word in s.split_ascii_whitespace() {
            if self.cur.is_empty() && !self.cur_prefix.is_empty() {
                self.cur.push_str(&self.cur_prefix);
                self.cur_prefix.clear();
            } else if self.pending_space && !self.cur.is_empty() && !self.cur.ends_with('\n') {
                self.cur.push(' ');
            }
            self.cur.push_str(word);
            self.pending_space = true;
            added += word.len() as u32;
        }
        if added > 0 {
            self.pending_space = bytes.last().is_some_and(u8::is_ascii_whitespace);
        }
        self.cur_chars += added;
        if self.link_depth > 0 {
            self.cur_links += added;
        }
    }

    /// End the block being filled.
    fn flush(&mut self) {
        self.pending_space = false;
        if self.cur_chars == 0 {
            self.cur.clear();
            self.cur_links = 0;
            return;
        }
        let mut text = std::mem::take(&mut self.cur);
        match self.cur_kind {
            Kind::Pre => {
                let end = text.trim_end().len();
                text.truncate(end);
                // Leading blank lines go; the first line's indentation stays.
                let first = text
                    .char_indices()
                    .take_while(|(_, c)| c.is_whitespace())
                    .filter(|(_, c)| *c == '\n')
                    .last()
                    .map_or(0, |(i, _)| i + 1);
                text.drain(..first);
            }
            Kind::Text => {
                let end = text.trim_end().len();
                text.truncate(end);
            }
        }
        if !text.is_empty() {
            self.blocks.push(Block {
                text,
                kind: self.cur_kind,
                group: self.cur_group,
                item: self.cur_item,
                chars: self.cur_chars,
                link_chars: self.cur_links,
            });
        }
        self.cur_chars = 0;
        self.cur_links = 0;
        self.cur_prefix.clear();
    }

    fn finish(mut self) -> Extracted {
        self.flush_text();
        self.pop_to(0);
        self.flush();
        let n = self.blocks.len();
        for r in &mut self.regions {
            r.end = r.end.min(n);
        }
        let total: u64 = self.blocks.iter().map(|b| b.chars as u64).sum();
        // The best tier whose areas hold enough of the page's text: all its outermost
        // areas are kept.
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        let mut area = AREA_NAMES[0];
        for tier in 1..=5u8 {
            let mut ranges: Vec<(usize, usize)> = Vec::new();
            for r in self
                .regions
                .iter()
                .filter(|r| r.tier == tier && r.start < r.end)
            {
                if ranges.last().is_some_and(|&(_, e)| r.start < e) {
                    continue; // inside the previous area of this tier
                }
                ranges.push((r.start, r.end));
            }
            let chars: u64 = ranges
                .iter()
                .flat_map(|&(s, e)| &self.blocks[s..e])
                .map(|b| b.chars as u64)
                .sum();
            if chars >= 100.min(total) && chars * 10 >= total && chars > 0 {
                chosen = ranges;
                area = AREA_NAMES[tier as usize];
                break;
            }
        }
        let keep: Vec<&Block> = if chosen.is_empty() {
            // No content area: every block but link lists.
            self.blocks
                .iter()
                .filter(|b| b.kind == Kind::Pre || b.link_chars * 2 <= b.chars)
                .collect()
        } else {
            chosen
                .iter()
                .flat_map(|&(s, e)| &self.blocks[s..e])
                .collect()
        };
        // Lists that are mostly links (tables of contents, "related" lists) go.
        let mut list_links: std::collections::HashMap<u32, (u64, u64)> = Default::default();
        for b in keep.iter().filter(|b| b.item) {
            let e = list_links.entry(b.group).or_default();
            e.0 += b.chars as u64;
            e.1 += b.link_chars as u64;
        }
        let keep: Vec<&Block> = keep
            .into_iter()
            .filter(|b| !b.item || list_links.get(&b.group).is_none_or(|&(c, l)| l * 2 <= c))
            .collect();
        let mut text = String::with_capacity(keep.iter().map(|b| b.text.len() + 2).sum());
        let mut last_group = 0;
        for b in keep {
            if !text.is_empty() {
                text.push_str(if b.group != 0 && b.group == last_group {
                    "\n"
                } else {
                    "\n\n"
                });
            }
            text.push_str(&b.text);
            last_group = b.group;
        }
        let title = collapse(&self.title);
        Extracted {
            text,
            title: (!title.is_empty()).then_some(title),
            lang: self.lang.filter(|l| !l.is_empty()),
            canonical: self.canonical,
            area,
            links: self.links,
            base: self.base,
        }
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        extract(html, &ExtractOptions::default()).text
    }

    #[test]
    fn code_blocks_keep_their_indentation_through_highlighting_spans() {
        let html = "<html><body><main><p>Define it:</p><div class=\"highlight\"><pre>\n\
            <span class=\"k\">def</span> <span class=\"nf\">f</span>(x):\n    \
            <span class=\"k\">if</span> x &lt; 1:\n        <span class=\"k\">return</span> \
            &quot;a&quot;\n\n    return x\n</pre></div><p>Done.</p></main></body></html>";
        assert_eq!(
            text(html),
            "Define it:\n\ndef f(x):\n    if x < 1:\n        return \"a\"\n\n    return x\n\nDone."
        );
    }

    #[test]
    fn furniture_goes_and_the_content_area_stays() {
        let html = r##"<!DOCTYPE html><html lang="en-GB"><head><title> A  page </title>
            <link rel="canonical" href="https://example.org/a">
            <style>p { color: red }</style><script>var x = "<p>no</p>";</script></head>
            <body><header><a href="/">Home</a> <a href="/b">Blog</a></header>
            <nav><ul><li><a href="/x">X</a></li></ul></nav>
            <div class="sidebar">Side text that is long enough to matter here.</div>
            <div class="cookie-banner">We use cookies.</div>
            <div role="main"><h1>Title <a class="headerlink" href="#t">¶</a></h1>
            <p>First   paragraph
            of text.<br>Second line.</p>
            <ul><li>one</li><li>two <b>bold</b></ul><ol><li>first<li>second</ol>
            <table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
            <div style="display: none">hidden</div><p hidden>also hidden</p>
            </div><footer>Copyright 2024</footer></body></html>"##;
        let e = extract(html, &ExtractOptions::default());
        assert_eq!(
            e.text,
            "Title\n\nFirst paragraph of text.\nSecond line.\n\n- one\n- two bold\n\n\
             1. first\n2. second\n\na | b\n1 | 2"
        );
        assert_eq!(e.title.as_deref(), Some("A page"));
        assert_eq!(e.lang.as_deref(), Some("en-GB"));
        assert_eq!(e.canonical.as_deref(), Some("https://example.org/a"));
        assert_eq!(e.area, "<main> or role=main");
    }

    #[test]
    fn asides_are_furniture_outside_the_content_and_content_inside_it() {
        let html = "<aside>Site-wide box with much text in it.</aside><main><p>Body text.</p>\
            <aside class=\"footnote\" role=\"note\"><p>[1] A footnote.</p></aside>\
            <aside class=\"sidebar\"><pre>x = 1</pre></aside>\
            <aside role=\"complementary\">Related links</aside></main>";
        assert_eq!(text(html), "Body text.\n\n[1] A footnote.\n\nx = 1");
    }

    #[test]
    fn without_a_content_area_link_lists_go() {
        let html = "<body><div><a href=1>Home</a> | <a href=2>About us</a></div>\
            <p>Real text with <a href=3>a link</a> inside a longer sentence.</p></body>";
        let e = extract(html, &ExtractOptions::default());
        assert_eq!(e.text, "Real text with a link inside a longer sentence.");
        assert_eq!(e.area, "whole page");
    }

    #[test]
    fn markup_in_text_is_text_and_scripts_are_never_text() {
        let html = "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &eacute;&#233;</p>\
            <script>document.write('<p>x</p>')</script><p>after</p>";
        assert_eq!(text(html), "<script>alert(1)</script> & éé\n\nafter");
    }

    #[test]
    fn unclosed_and_misnested_elements_do_not_swallow_the_page() {
        let html = "<div><p>one<p>two<div>three</span></div></i>four<svg/>five\
            <iframe src=x></iframe><p>six";
        assert_eq!(text(html), "one\n\ntwo\n\nthree\n\nfourfive\n\nsix");
    }

    #[test]
    fn the_best_content_area_wins_when_it_has_enough_text() {
        let body = "Body text of the article that goes on for a while. ".repeat(4);
        let html = format!(
            "<main><div class=\"intro\">Intro</div><div class=\"post-content\"><p>{body}</p></div>\
             <div>Comments and more</div></main>"
        );
        let e = extract(&html, &ExtractOptions::default());
        assert_eq!(e.text, body.trim());
        assert_eq!(e.area, "article body class");
        // A tiny article-body area among much text does not win.
        let html = format!("<main><div class=\"post-content\">x</div><p>{body}</p></main>");
        let e = extract(&html, &ExtractOptions::default());
        assert_eq!(e.text, format!("x\n\n{}", body.trim()));
    }

    #[test]
    fn characters_split_by_character_references_stay_whole() {
        assert_eq!(
            text("<pre>A = &quot;Österreich&quot; # ü</pre>"),
            "A = \"Österreich\" # ü"
        );
        assert_eq!(text("<p>&lt;Ä&gt;&nbsp;ß</p>"), "<Ä>\u{a0}ß");
    }

    #[test]
    fn empty_and_text_free_pages_give_empty_text() {
        assert_eq!(text(""), "");
        assert_eq!(
            text("<html><head><title>t</title></head><body><nav>n</nav></body></html>"),
            ""
        );
        assert_eq!(text("plain words"), "plain words");
    }
}
