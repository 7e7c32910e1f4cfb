import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/agent/memory-store.js';
import {
  type AgentBundle,
  EXPORT_FORMAT_VERSION,
  ExportFormatError,
  type ExportItem,
  exportAgentRecords,
  exportHeader,
  formatExportLine,
  parseExportHeader,
  readExport,
} from '../../src/transfer/export-format.js';
import { JsonStoreReader } from '../../src/transfer/json-store-reader.js';
import { FIXTURE_DIR } from './cli-support.js';

const COMPRESS = 'agt-01M81Y5ZGM5G6FSHPDFFH1SCM2';

async function exportLines(store: MemoryStore | JsonStoreReader, agentIds: string[]): Promise<string[]> {
  const lines = [formatExportLine(exportHeader('test'))];
  for (const agentId of agentIds) {
    for await (const record of exportAgentRecords(store, agentId)) lines.push(formatExportLine(record));
  }
  lines.push(formatExportLine({ type: 'end', agents: agentIds.length, kvInstances: 0, kvRecords: 0 }));
  return lines;
}

async function readAll(lines: string[]): Promise<ExportItem[]> {
  const items: ExportItem[] = [];
  for await (const item of readExport(lines as unknown as AsyncIterable<string>)) items.push(item);
  return items;
}

async function failure(lines: string[]): Promise<ExportFormatError> {
  const error = await readAll(lines).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ExportFormatError);
  return error as ExportFormatError;
}

describe('the export format (version 1)', () => {
  it('starts with the header and reads back every record of an agent exactly', async () => {
    const reader = new JsonStoreReader(FIXTURE_DIR);
    const lines = await exportLines(reader, [COMPRESS]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'kode-store-export', version: 1 });
    const items = await readAll(lines);
    expect(items.map((i) => i.kind)).toEqual(['agent', 'end']);
    const bundle = (items[0] as { bundle: AgentBundle }).bundle;
    expect(bundle.info).toEqual(await reader.loadInfo(COMPRESS));
    expect(bundle.messages).toEqual(await reader.loadMessages(COMPRESS));
    expect(bundle.historyWindows).toEqual(await reader.loadHistoryWindows(COMPRESS));
    expect(bundle.recoveredFiles).toEqual(await reader.loadRecoveredFiles(COMPRESS));
    const events = [];
    for await (const e of reader.readEvents(COMPRESS)) events.push(e);
    expect(JSON.stringify(bundle.events)).toBe(JSON.stringify(events));
  });

  it('keeps unicode, NUL, lone surrogates, key order, zeros and empty values through a line', async () => {
    const store = new MemoryStore();
    const messages = [
      {
        role: 'user' as const,
        content: [{ type: 'text' as const, text: 'a\u0000b 😀 漢字 \ud800 "q" \\ \n' }],
      },
      { role: 'assistant' as const, content: [], metadata: { transport: 'text' as const } },
    ];
    await store.saveMessages('agt/../x y', messages);
    await store.saveInfo('agt/../x y', {
      zeta: 0,
      agentId: 'agt/../x y',
      alpha: false,
      templateId: '',
      createdAt: 'x',
      lineage: [],
      configVersion: 'v',
      messageCount: 2,
      lastSfpIndex: 0,
    } as never);
    const lines = await exportLines(store, ['agt/../x y']);
    for (const line of lines) expect(line.isWellFormed()).toBe(true);
    const bundle = ((await readAll(lines))[0] as { bundle: AgentBundle }).bundle;
    expect(bundle.messages).toEqual(messages);
    expect(Object.keys(bundle.info!)).toEqual(Object.keys((await store.loadInfo('agt/../x y'))!));
  });

  it('refuses a file that is not an export, and a newer version', async () => {
    expect((await failure(['{"hello":1}'])).message).toMatch(/not a kode-store-export file/);
    expect((await failure([])).message).toMatch(/empty input/);
    const newer = JSON.stringify({ format: 'kode-store-export', version: EXPORT_FORMAT_VERSION + 1 });
    expect(() => parseExportHeader(newer)).toThrow(/newer kode-store/);
    expect((await failure(['not json'])).line).toBe(1);
  });

  it('refuses a cut file: no end line, or an agent without its agentEnd', async () => {
    const lines = await exportLines(new JsonStoreReader(FIXTURE_DIR), [COMPRESS]);
    expect((await failure(lines.slice(0, -1))).message).toMatch(/no "end" line/);
    expect((await failure(lines.slice(0, 20))).message).toMatch(/ends inside agent/);
  });

  it('refuses edited files: counts that do not match, records out of place, unknown types', async () => {
    const lines = await exportLines(new JsonStoreReader(FIXTURE_DIR), [COMPRESS]);
    const dropped = [...lines.slice(0, 5), ...lines.slice(6)];
    expect((await failure(dropped)).message).toMatch(/agentEnd says/);
    const unknown = [lines[0]!, '{"type":"telepathy"}', ...lines.slice(1)];
    const error = await failure(unknown);
    expect(error.message).toMatch(/unknown record type/);
    expect(error.line).toBe(2);
    const orphan = [lines[0]!, '{"type":"message","agentId":"x","value":{}}'];
    expect((await failure(orphan)).message).toMatch(/outside its agent/);
    const nested = [lines[0]!, lines[1]!, '{"type":"agent","agentId":"other"}'];
    expect((await failure(nested)).message).toMatch(/begins before/);
    const afterEnd = [...lines, lines[1]!];
    expect((await failure(afterEnd)).message).toMatch(/after the "end" line/);
    const wrongTotal = [...lines.slice(0, -1), '{"type":"end","agents":2,"kvInstances":0,"kvRecords":0}'];
    expect((await failure(wrongTotal)).message).toMatch(/"end" line counts 2 agents/);
  });

  it('yields the agents that were complete before a damaged line', async () => {
    const reader = new JsonStoreReader(FIXTURE_DIR);
    const ids = (await reader.list()).slice(0, 2);
    const lines = await exportLines(reader, ids);
    const agentEnds = lines.flatMap((line, i) => (line.startsWith('{"type":"agentEnd"') ? [i] : []));
    const damaged = [
      ...lines.slice(0, agentEnds[0]! + 3),
      '{"type":"message",',
      ...lines.slice(agentEnds[0]! + 3),
    ];
    const seen: string[] = [];
    const error = await (async () => {
      for await (const item of readExport(damaged as unknown as AsyncIterable<string>)) {
        if (item.kind === 'agent') seen.push(item.bundle.agentId);
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExportFormatError);
    expect(seen).toEqual([ids[0]]);
  });
});
