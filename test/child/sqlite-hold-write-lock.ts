/**
 * Holds SQLite's write lock on a database file until told to let go:
 * `BEGIN IMMEDIATE`, print `locked`, wait for `release` on stdin, `COMMIT`,
 * print `released`. Usage: sqlite-hold-write-lock.ts <dbPath>
 */
import Database from 'better-sqlite3';
import { nextStdinLine } from './sqlite-child-process.js';

const [dbPath] = process.argv.slice(2);
if (!dbPath) throw new Error('usage: sqlite-hold-write-lock.ts <dbPath>');
const db = new Database(dbPath);
db.exec('BEGIN IMMEDIATE');
console.log('locked');
await nextStdinLine('release');
db.exec('COMMIT');
db.close();
console.log('released');
