/** The record model storage works with: the merge rules and renderers, bound to TIMEZONE. */
import type { RecordModel } from '../storage/backend.ts';
import { isFinal, mergeStates, sameState } from './merge.ts';
import { chooseFolder, renderDocuments, summarize, type RenderOptions } from './render.ts';

export function recordModel(timezone: string, options: RenderOptions = {}): RecordModel {
  return {
    key: JSON.stringify([timezone, options.priceTable ?? null]),
    merge: mergeStates,
    same: sameState,
    chooseFolder: (state) => chooseFolder(state, timezone),
    render: (state, folder, kinds) => renderDocuments(state, folder, kinds, timezone, options),
    isFinal,
    summarize,
  };
}
