//! Queries here are written once with PostgreSQL's numbered placeholders
//! (`$1`, `$2`, …), which SQLite also reads. MySQL only knows `?`, bound
//! in the order they appear: this turns one into the other and says which
//! parameter each `?` takes.

/// `sql` with every `$N` outside quotes and comments replaced by `?`, and
/// the parameter number (from 1) of each `?` in order. A number used twice
/// is bound twice.
pub fn to_question_marks(sql: &str) -> (String, Vec<usize>) {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                // To the closing quote; a doubled quote or a backslash
                // escape stays inside.
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 2;
                    } else if bytes[i] == quote {
                        i += 1;
                        if bytes.get(i) != Some(&quote) {
                            break;
                        }
                        i += 1;
                    } else {
                        i += 1;
                    }
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |end| i + end);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let number = sql[i + 1..i + 1 + digits]
                    .parse()
                    .expect("ASCII digits make a number");
                out.push_str(&sql[copied..i]);
                out.push('?');
                order.push(number);
                i += 1 + digits;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    (out, order)
}

#[cfg(test)]
mod tests {
    use super::to_question_marks;

    #[test]
    fn numbers_become_marks_in_text_order() {
        assert_eq!(
            to_question_marks("UPDATE t SET a = $2, b = $10 WHERE id = $1 AND c = $2"),
            (
                "UPDATE t SET a = ?, b = ? WHERE id = ? AND c = ?".to_string(),
                vec![2, 10, 1, 2]
            )
        );
        assert_eq!(
            to_question_marks("SELECT 1"),
            ("SELECT 1".to_string(), vec![])
        );
    }

    #[test]
    fn quotes_and_comments_are_left_alone() {
        let sql = "SELECT '$1', 'it''s $2', \"$3\", `$4`, 'a\\'$5' -- $6\n, $7 /* $8 */ , $9$";
        assert_eq!(
            to_question_marks(sql),
            (
                "SELECT '$1', 'it''s $2', \"$3\", `$4`, 'a\\'$5' -- $6\n, ? /* $8 */ , ?$"
                    .to_string(),
                vec![7, 9]
            )
        );
        // Unclosed quotes and comments run to the end without a panic.
        for sql in ["'$1", "/* $1", "-- $1", "\"$1\\", "$"] {
            assert_eq!(to_question_marks(sql), (sql.to_string(), vec![]), "{sql}");
        }
    }
}
