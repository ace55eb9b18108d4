//! The built-in accounts routes: register, log in, log out, and who am I.

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::RequestContext;
use crate::auth::password::{hash_password, verify_password};
use crate::auth::throttle::{
    MAX_FAILED_LOGINS_PER_ADDR, MAX_FAILED_LOGINS_PER_EMAIL, MAX_REGISTRATIONS_PER_ADDR, Window,
    forwarded_addr, normalize_addr,
};
use crate::config::load::Config;
use crate::domain::account::{User, new_user_id};
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::log::RequestLog;
use crate::http::response::{empty, json};
use crate::http::routes::Endpoint;
use crate::store::accounts::{AccountStore, ThrottleKey};

/// One call to a built-in accounts route (accounts are on).
pub(crate) struct AccountCall<'a, S> {
    pub(crate) store: &'a S,
    pub(crate) config: &'a Config,
    pub(crate) req: &'a Request<Vec<u8>>,
    pub(crate) ctx: &'a RequestContext,
    pub(crate) log: &'a mut RequestLog,
}

impl<S: AccountStore> AccountCall<'_, S> {
    pub(crate) async fn run(self, endpoint: Endpoint) -> Result<Response<Vec<u8>>, ApiError> {
        match endpoint {
            Endpoint::Register => self.register().await,
            Endpoint::Login => self.login().await,
            // Tokens are stateless: nothing to revoke, so no token is required or checked.
            Endpoint::Logout => Ok(empty(StatusCode::NO_CONTENT)),
            _ => self.me().await,
        }
    }

    async fn register(self) -> Result<Response<Vec<u8>>, ApiError> {
        let (email, password) = body::parse_credentials(body::json_body(self.req, false)?)?;
        // Each registration costs a hash and may create an account: counted per address
        // before either, and never forgiven.
        let window = Window::at(self.ctx.now);
        if let Some(addr) = self.client_addr() {
            let key = ThrottleKey::new(&format!("register:addr:{addr}"), window.start);
            if self.count(&key, &window).await? > MAX_REGISTRATIONS_PER_ADDR {
                return Err(ApiError::TooManyAttempts(window.retry_after));
            }
        }
        let entropy = self
            .ctx
            .entropy
            .ok_or_else(|| ApiError::Internal("the host provided no entropy".into()))?;
        let (salt, rest) = entropy.split_at(16);
        let mut id_bytes = [0u8; 12];
        id_bytes.copy_from_slice(&rest[..12]);
        let hash = hash_password(&password, salt, self.config.password_cost)?;
        let user = User {
            id: new_user_id(&id_bytes),
            email,
            created_at: self.ctx.now,
        };
        self.store.create_user(&user, &hash).await?;
        self.log.user_id = Some(user.id.clone());
        self.token_envelope(StatusCode::CREATED, &user)
    }

    async fn login(self) -> Result<Response<Vec<u8>>, ApiError> {
        let (email, password) = body::parse_credentials(body::json_body(self.req, false)?)?;
        // Count the attempt first, atomically, so that parallel guesses cannot all pass a
        // check made before any of them is counted; over a limit, no hash is computed.
        let window = Window::at(self.ctx.now);
        let email_key = ThrottleKey::new(&format!("login:email:{}", email.folded()), window.start);
        let addr_key = self
            .client_addr()
            .map(|addr| ThrottleKey::new(&format!("login:addr:{addr}"), window.start));
        // The address first: an address over its limit must not go on counting against
        // the emails it names, or one client could lock every account out.
        if let Some(key) = &addr_key
            && self.count(key, &window).await? > MAX_FAILED_LOGINS_PER_ADDR
        {
            return Err(ApiError::TooManyAttempts(window.retry_after));
        }
        if self.count(&email_key, &window).await? > MAX_FAILED_LOGINS_PER_EMAIL {
            return Err(ApiError::TooManyAttempts(window.retry_after));
        }
        let record = self.store.login_record(&email).await?;
        let user = match record {
            Some((user, hash)) => verify_password(&password, &hash)?.then_some(user),
            None => {
                // The same work as a wrong password, and the same answer.
                let dummy = self.config.password_cost.dummy_hash();
                verify_password(&password, &dummy)?;
                None
            }
        };
        let Some(user) = user else {
            return Err(ApiError::InvalidCredentials);
        };
        // Only failures add up: a login that succeeded takes its count back.
        self.store.forgive_attempt(&email_key).await?;
        if let Some(key) = &addr_key {
            self.store.forgive_attempt(key).await?;
        }
        self.log.user_id = Some(user.id.clone());
        self.token_envelope(StatusCode::OK, &user)
    }

    /// Counts this attempt under `key` until the window ends.
    async fn count(&self, key: &ThrottleKey, window: &Window) -> Result<u64, ApiError> {
        Ok(self
            .store
            .count_attempt(key, window.end, self.ctx.now)
            .await?)
    }

    /// The client's address as the throttle keys it: the hop a trusted proxy added to the
    /// configured header (`client_addr_header`), else the host's report.
    fn client_addr(&self) -> Option<String> {
        let forwarded = self
            .config
            .client_addr_header
            .as_deref()
            .and_then(|header| forwarded_addr(self.req.headers(), header))
            .and_then(normalize_addr);
        // Without a usable forwarded hop (no header, or one that does not parse), the host's
        // report still counts: a request must never escape the address limit by leaving
        // the header out.
        forwarded.or_else(|| self.ctx.client_addr.clone())
    }

    async fn me(self) -> Result<Response<Vec<u8>>, ApiError> {
        let id = self
            .config
            .verifier
            .authenticate(self.req.headers(), self.ctx.now)?;
        self.log.user_id = Some(id.clone());
        // A valid token of a user without a built-in account (another issuer's): 404.
        let user = self.store.user(&id).await?.ok_or(ApiError::NotFound)?;
        Ok(json(StatusCode::OK, &serde_json::json!({ "data": user })))
    }

    fn token_envelope(
        &self,
        status: StatusCode,
        user: &User,
    ) -> Result<Response<Vec<u8>>, ApiError> {
        // Configuration checks guarantee a secret when accounts are on.
        let tokens =
            self.config.tokens.as_ref().ok_or_else(|| {
                ApiError::Internal("accounts are on but no jwt_secret is set".into())
            })?;
        let token = tokens.issue(&user.id, self.ctx.now)?;
        let mut r = json(
            status,
            &serde_json::json!({ "data": {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": tokens.ttl_secs,
                "user": user,
            }}),
        );
        // RFC 6749 section 5.1: responses carrying tokens are not cached.
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }
}
