import mysql from 'mysql2';

/**
 * A database, table or role name as one backquoted identifier (backquotes doubled), by mysql2's
 * own escapeId with forbidQualified: `a.b` stays one name instead of becoming `a`.`b`.
 */
export function quoteName(name: string): string {
  return mysql.escapeId(name, true);
}
