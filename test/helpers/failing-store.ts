import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';

/**
 * Wraps a real store so that the n-th update inside the transaction throws after the earlier ones ran:
 * the way to prove that a failure half-way leaves nothing behind. The wrappers inherit every other method
 * from the real objects, so they behave as the store does in everything else.
 */
export function failOnUpdate(
  open: (target: StoreTarget) => Promise<Store>,
  n: number,
): (target: StoreTarget) => Promise<Store> {
  return async (target) => {
    const store = await open(target);
    const wrapped: Store = Object.create(store);
    wrapped.transaction = (work, options) =>
      store.transaction((tx) => {
        let updates = 0;
        const failing: TransactionStore = Object.create(tx);
        failing.updateMany = async (...args) => {
          updates += 1;
          if (updates === n) throw new Error(`injected failure on update ${n}`);
          return tx.updateMany(...args);
        };
        return work(failing);
      }, options);
    return wrapped;
  };
}
