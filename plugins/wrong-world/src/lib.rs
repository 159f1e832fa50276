//! `wrong-world`: a valid component that does not export `tokenhost:plugin/token-source`.
//!
//! It implements an unrelated world (`example:other/greeter`, see `wit/other.wit`), so
//! the host must refuse to load it as a token plugin.

use exports::example::other::greeter::Guest;

wit_bindgen::generate!({
    path: "wit",
    world: "other",
});

struct Greeter;

impl Guest for Greeter {
    fn greet() -> String {
        "hello from the wrong world".to_string()
    }
}

export!(Greeter);
