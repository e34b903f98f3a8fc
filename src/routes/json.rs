//! Serde helpers shared by the JSON views and bodies.
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serializer};

use super::body::{read_all, BodyLimit};
use crate::error::ApiError;

/// RFC 3339 UTC to the second: `2026-11-22T10:00:00Z`.
///
/// Written into a stack buffer: a list of 50 tasks has 100 timestamps, and
/// chrono's general formatter allocated a string for each.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match rfc3339_bytes(at) {
        // Only ASCII digits and separators were written.
        Some(buf) => s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default()),
        None => s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or `None` for a year outside 0..=9999 (chrono
/// then writes its sign and extra digits).
fn rfc3339_bytes(at: &DateTime<Utc>) -> Option<[u8; 20]> {
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let mut buf = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, at.month());
    put(8, 2, at.day());
    put(11, 2, at.hour());
    put(14, 2, at.minute());
    // A leap second (chrono's second 59 with 1e9+ nanoseconds) prints as :60, as chrono does.
    put(17, 2, at.second() + at.nanosecond() / 1_000_000_000);
    Some(buf)
}

/// For PATCH fields: absent is `None`, `null` is `Some(None)`.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `T` read only from a JSON object. serde's derived structs also accept a
/// JSON array (their fields in order), so `[]` would pass as an empty PATCH;
/// asking the deserializer for a map refuses that.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

/// The JSON body extractor of every handler: a JSON object only, within the
/// body limit; a field of the wrong shape is a 422 naming its JSON path.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        use futures_util::FutureExt;
        let is_json = is_json(req);
        let (req, payload) = (req.clone(), payload.take());
        async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType(
                    "Send a JSON body (Content-Type: application/json)".into(),
                ));
            }
            let body = read_all(&req, payload, BodyLimit::of(&req)).await?;
            parse_json::<Object<T>>(&body).map(|o| JsonBody(o.0))
        }
        .boxed_local()
    }
}

/// `application/json` or any `+json` type, as actix's own extractor accepts.
fn is_json(req: &actix_web::HttpRequest) -> bool {
    use actix_web::HttpMessage;
    matches!(req.mime_type(), Ok(Some(m))
        if m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON))
}

/// `T` from JSON bytes, with the path of the field at fault on a 422.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(ApiError::from_json)?;
    de.end()
        .map_err(|_| ApiError::InvalidRequest("Malformed JSON body".into()))?;
    Ok(value)
}

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn chrono_says(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    #[test]
    fn timestamps_match_chrono() {
        let cases = [
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 999_999_999).unwrap(),
            NaiveDate::from_ymd_opt(2016, 12, 31)
                .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
                .unwrap()
                .and_utc(),
        ];
        for at in cases {
            let ours = rfc3339_bytes(&at).map(|b| String::from_utf8(b.to_vec()).unwrap());
            assert_eq!(ours.as_deref(), Some(chrono_says(&at).as_str()), "{at:?}");
        }
    }

    #[test]
    fn years_beyond_four_digits_fall_back_to_chrono() {
        let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(rfc3339_bytes(&far), None);
        let mut out = Vec::new();
        rfc3339(&far, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("\"{}\"", chrono_says(&far))
        );
    }
}
