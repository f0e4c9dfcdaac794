/**
 * The optional price table (CALLDATA_PRICE_TABLE) that turns a call's model usage into an
 * estimated cost (functions/domain/insights/usage.ts estimateCost). It is configuration, read and
 * validated with the rest of it (config.ts, through env.ts readJson); the domain only uses its type.
 */
import * as z from 'zod';

const rate = z.number().finite().nonnegative();
const modelPriceSchema = z
  .strictObject({
    /** Per million prompt (input) tokens. */
    promptPer1M: rate.optional(),
    /** Per million cached prompt tokens; without it cached tokens cost promptPer1M. */
    promptCachedPer1M: rate.optional(),
    /** Per million completion (output) tokens. */
    completionPer1M: rate.optional(),
    per1MCharacters: rate.optional(),
    /** Per minute of audio (STT input, or TTS output when billed by time). */
    perMinute: rate.optional(),
  })
  .refine((price) => Object.values(price).some((value) => value !== undefined), { message: 'has no price (promptPer1M, promptCachedPer1M, completionPer1M, per1MCharacters or perMinute)' });

export const priceTableSchema = z.strictObject({
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD').default('USD'),
  /** Keyed by `provider/model` (or the model alone, for usage without a provider). */
  models: z.record(z.string().min(1), modelPriceSchema),
});
export type PriceTable = z.infer<typeof priceTableSchema>;
export type ModelPrice = z.infer<typeof modelPriceSchema>;

