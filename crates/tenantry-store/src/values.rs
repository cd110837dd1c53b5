//! Multi-row `INSERT … VALUES` lists.

/// Appends `(…),(…),…` to `sql`: `rows` tuples of `per_row` numbered
/// parameters each, numbered from `$first` on, every tuple opening with
/// `leading` (e.g. `"$1, "` for a parameter all rows share).
pub(crate) fn push_value_rows(
    sql: &mut String,
    rows: usize,
    per_row: usize,
    leading: &str,
    first: usize,
) {
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        sql.push_str(leading);
        for column in 0..per_row {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + row * per_row + column).to_string());
        }
        sql.push(')');
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_every_row_after_the_shared_parameter() {
        let mut sql = String::new();
        super::push_value_rows(&mut sql, 2, 3, "$1, ", 2);
        assert_eq!(sql, "($1, $2, $3, $4),($1, $5, $6, $7)");
        let mut sql = String::new();
        super::push_value_rows(&mut sql, 2, 2, "", 1);
        assert_eq!(sql, "($1, $2),($3, $4)");
    }
}
