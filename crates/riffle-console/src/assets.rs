//! The page's files, embedded in the binary: plain HTML, JavaScript modules
//! and CSS with no build step, and the vendored uPlot (see
//! `assets/vendor/uplot/SOURCE.md`). Nothing is fetched at run time.

/// One embedded file: its path on the listener, content type and bytes.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

pub const ASSETS: [Asset; 6] = [
    Asset {
        path: "/",
        content_type: HTML,
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: JS,
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        path: "/views.js",
        content_type: JS,
        body: include_bytes!("../assets/views.js"),
    },
    Asset {
        path: "/style.css",
        content_type: CSS,
        body: include_bytes!("../assets/style.css"),
    },
    Asset {
        path: "/vendor/uplot/uPlot.iife.min.js",
        content_type: JS,
        body: include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        path: "/vendor/uplot/uPlot.min.css",
        content_type: CSS,
        body: include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// The file served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
