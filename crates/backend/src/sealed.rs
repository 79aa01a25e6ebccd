//! Refresh tokens at rest. With a token key configured, the players' LWA refresh tokens are sealed with
//! XChaCha20-Poly1305 and bound to their row's user id, so a copy of the database (a backup, a dump, a stolen
//! disk) does not hand out players' Amazon access, and a sealed token moved to another row does not open.
//! Tokens stored before a key was set are read as they are and sealed when next rotated.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Marks a sealed value: `sealed1:` + hex(nonce ‖ ciphertext).
const PREFIX: &str = "sealed1:";
const NONCE_LEN: usize = 24;

/// The 256-bit key refresh tokens are sealed with. Keep it out of the database (an environment variable or a
/// secrets manager); losing it means players link their Amazon account again.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    /// A key from 64 hex digits.
    pub fn from_hex(hex_key: &str) -> Result<Self, String> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| "a token key is 64 hex digits".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "a token key is 64 hex digits (32 bytes)".to_owned())?;
        Ok(Self(key))
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// The key as 64 hex digits, for storing it where it belongs.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

/// What to store for `token` of `user_id`: sealed with `key`, or as it is without one.
pub(crate) fn seal(key: Option<&TokenKey>, user_id: &str, token: &str) -> String {
    let Some(key) = key else {
        return token.to_owned();
    };
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = key
        .cipher()
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: token.as_bytes(), aad: user_id.as_bytes() })
        .expect("XChaCha20-Poly1305 seals any length a refresh token has");
    format!("{PREFIX}{}{}", hex::encode(nonce), hex::encode(sealed))
}

/// The token stored for `user_id`. A sealed value needs the key it was sealed with; anything else is a token
/// stored before sealing was turned on.
pub(crate) fn open(key: Option<&TokenKey>, user_id: &str, stored: &str) -> Result<String, String> {
    let Some(sealed) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let key = key.ok_or("the refresh token is sealed, and no token key is configured")?;
    let bytes = hex::decode(sealed).map_err(|_| "a damaged sealed refresh token".to_owned())?;
    if bytes.len() <= NONCE_LEN {
        return Err("a damaged sealed refresh token".into());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let opened = key
        .cipher()
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: user_id.as_bytes() })
        .map_err(|_| "the refresh token does not open with this key (another key, or another row's token)")?;
    String::from_utf8(opened).map_err(|_| "a damaged sealed refresh token".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_only_with_their_key_and_row() {
        let key = TokenKey::generate();
        let sealed = seal(Some(&key), "player-1", "Atzr|secret");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("Atzr|secret"), "{sealed}");
        assert_ne!(sealed, seal(Some(&key), "player-1", "Atzr|secret"), "a fresh nonce every time");
        assert_eq!(open(Some(&key), "player-1", &sealed).unwrap(), "Atzr|secret");
        assert!(open(Some(&key), "player-2", &sealed).is_err(), "bound to its row");
        assert!(open(Some(&TokenKey::generate()), "player-1", &sealed).is_err(), "another key");
        assert!(open(None, "player-1", &sealed).is_err(), "no key");
        let flipped = if sealed.ends_with('0') { '1' } else { '0' };
        let tampered = format!("{}{flipped}", &sealed[..sealed.len() - 1]);
        assert!(open(Some(&key), "player-1", &tampered).is_err(), "tampered");
        assert!(open(Some(&key), "player-1", "sealed1:zz").is_err());
        assert!(open(Some(&key), "player-1", "sealed1:00").is_err());
        // Stored before sealing was turned on: read as it is.
        assert_eq!(open(Some(&key), "player-1", "Atzr|old").unwrap(), "Atzr|old");
        assert_eq!(seal(None, "player-1", "Atzr|plain"), "Atzr|plain");
        let round = TokenKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(open(Some(&round), "player-1", &sealed).unwrap(), "Atzr|secret");
        assert!(TokenKey::from_hex("abc").is_err() && TokenKey::from_hex(&"g".repeat(64)).is_err());
        assert_eq!(format!("{key:?}"), "TokenKey(…)");
    }
}
