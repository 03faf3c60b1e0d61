//! The XML documents of the subset: written with a small escaping writer, and the three
//! request documents (CompleteMultipartUpload, Delete, CreateBucketConfiguration) read with roxmltree.

use crate::S3Error;

/// S3's namespace on every response document.
pub const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// DeleteObjects takes "up to 1,000 keys" (S3 API Reference).
pub const MAX_DELETE_KEYS: usize = 1000;

/// Builds a document element by element; text is escaped.
pub struct Xml(String);

impl Xml {
    /// A document whose root element carries S3's namespace.
    pub fn document(root: &str) -> Self {
        Self(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NAMESPACE}\">"
        ))
    }

    /// A document without a namespace (S3's `<Error>`).
    pub fn bare(root: &str) -> Self {
        Self(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>"
        ))
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    pub fn elem(&mut self, tag: &str, text: impl AsRef<str>) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.0, text.as_ref());
        self.close(tag)
    }

    pub fn opt(&mut self, tag: &str, text: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(text) = text {
            self.elem(tag, text);
        }
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.0
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters; S3 writes
            // them as character references, which XML 1.0 readers refuse
            // too, so clients list such keys with encoding-type=url.
            c if u32::from(c) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", u32::from(c)));
            }
            c => out.push(c),
        }
    }
}

fn parse(body: &[u8]) -> Result<roxmltree::Document<'_>, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::MalformedXml)?;
    roxmltree::Document::parse(text).map_err(|_| S3Error::MalformedXml)
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name() == name)
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    children(node, name).next().map(|n| n.text().unwrap_or(""))
}

/// The parts a CompleteMultipartUpload lists: (PartNumber, ETag), in order.
pub fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, S3Error> {
    let doc = parse(body)?;
    let root = doc.root_element();
    if root.tag_name().name() != "CompleteMultipartUpload" {
        return Err(S3Error::MalformedXml);
    }
    children(root, "Part")
        .map(|part| {
            let number = child_text(part, "PartNumber")
                .and_then(|n| n.trim().parse::<u32>().ok())
                .ok_or(S3Error::MalformedXml)?;
            let etag = child_text(part, "ETag").ok_or(S3Error::MalformedXml)?;
            Ok((number, etag.trim().to_owned()))
        })
        .collect()
}

/// The keys of a DeleteObjects request and whether it is quiet.
pub fn parse_delete(body: &[u8]) -> Result<(Vec<String>, bool), S3Error> {
    let doc = parse(body)?;
    let root = doc.root_element();
    if root.tag_name().name() != "Delete" {
        return Err(S3Error::MalformedXml);
    }
    let quiet = child_text(root, "Quiet").is_some_and(|q| q.trim() == "true");
    let keys = children(root, "Object")
        .map(|o| {
            child_text(o, "Key")
                .map(str::to_owned)
                .ok_or(S3Error::MalformedXml)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() || keys.len() > MAX_DELETE_KEYS {
        return Err(S3Error::MalformedXml);
    }
    Ok((keys, quiet))
}

/// Checks an optional CreateBucketConfiguration (its region is not used:
/// the embedded S3 has one).
pub fn check_create_bucket_configuration(body: &[u8]) -> Result<(), S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let doc = parse(body)?;
    if doc.root_element().tag_name().name() == "CreateBucketConfiguration" {
        Ok(())
    } else {
        Err(S3Error::MalformedXml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let mut x = Xml::bare("R");
        x.elem("Key", "a<b>&\"c'");
        assert_eq!(
            x.finish("R"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R><Key>a&lt;b&gt;&amp;&quot;c&apos;</Key></R>"
        );
    }

    #[test]
    fn reads_complete_multipart_upload_with_or_without_namespace() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Part><ETag>"abc"</ETag><PartNumber>1</PartNumber></Part>
            <Part><PartNumber>2</PartNumber><ETag>&quot;def&quot;</ETag></Part>
        </CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(body).unwrap(),
            vec![(1, "\"abc\"".to_owned()), (2, "\"def\"".to_owned())]
        );
        assert!(matches!(
            parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>"),
            Err(S3Error::MalformedXml)
        ));
        assert!(matches!(
            parse_complete(b"not xml"),
            Err(S3Error::MalformedXml)
        ));
    }

    #[test]
    fn reads_delete_requests() {
        let body = b"<Delete><Quiet>true</Quiet><Object><Key>a/b</Key></Object><Object><Key>c</Key></Object></Delete>";
        assert_eq!(
            parse_delete(body).unwrap(),
            (vec!["a/b".to_owned(), "c".to_owned()], true)
        );
        assert!(parse_delete(b"<Delete></Delete>").is_err());
    }
}
