//! The total of a paged list, counted only when the page cannot tell it.
use super::DbError;

/// The rows a page query asks for: one more than the page holds, so that
/// `with_total` can tell whether the list goes on.
pub fn rows_to_read(limit: i64) -> i64 {
    limit.saturating_add(1)
}

/// The page (at most `limit` rows) and the list's total, from rows read with
/// `rows_to_read(limit)`. A page that is not full holds the rest of the list,
/// so `offset` plus its length is the total: most lists (a user's own tasks)
/// fit one page and cost one statement. Only a list that goes on past the
/// page, or a page past the end, runs `count`.
pub fn with_total<T>(
    mut rows: Vec<T>,
    limit: i64,
    offset: i64,
    count: impl FnOnce() -> Result<i64, DbError>,
) -> Result<(Vec<T>, i64), DbError> {
    let read = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let goes_on = read > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let total = if goes_on || (read == 0 && offset > 0) {
        count()?
    } else {
        offset.saturating_add(read)
    };
    Ok((rows, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(read: usize, limit: i64, offset: i64) -> (usize, i64, bool) {
        let mut counted = false;
        let (rows, total) = with_total(vec![(); read], limit, offset, || {
            counted = true;
            Ok(99)
        })
        .unwrap();
        (rows.len(), total, counted)
    }

    #[test]
    fn a_page_that_is_not_full_tells_the_total() {
        assert_eq!(total(0, 50, 0), (0, 0, false));
        assert_eq!(total(7, 50, 0), (7, 7, false));
        assert_eq!(
            total(50, 50, 0),
            (50, 50, false),
            "exactly full, nothing after"
        );
        assert_eq!(total(2, 5, 5), (2, 7, false));
    }

    #[test]
    fn a_list_that_goes_on_or_a_page_past_the_end_is_counted() {
        assert_eq!(total(51, 50, 0), (50, 99, true));
        assert_eq!(total(4, 3, 2), (3, 99, true));
        assert_eq!(total(0, 50, 100), (0, 99, true));
    }
}
