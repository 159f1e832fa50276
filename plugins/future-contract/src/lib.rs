//! `future-contract`: a plugin built against a major version the host does not know.
//!
//! Its WIT (`wit/token-source.wit`) is the real contract with the package version
//! changed to `tokenhost:plugin@9.0.0`, so it exports
//! `tokenhost:plugin/token-source@9.0.0`. The host must refuse it; if it were loaded,
//! it would return the token "from-the-future".

use exports::tokenhost::plugin::token_source::Guest;
use tokenhost::plugin::types::{Error, RefreshContext, Token};

wit_bindgen::generate!({
    path: "wit",
    world: "token-provider",
});

struct FutureContract;

fn token() -> Token {
    Token {
        value: "from-the-future".to_string(),
        expires_at_ms: None,
    }
}

impl Guest for FutureContract {
    fn resolve() -> Result<Token, Error> {
        Ok(token())
    }

    fn refresh(_context: RefreshContext) -> Result<Token, Error> {
        Ok(token())
    }
}

export!(FutureContract);
