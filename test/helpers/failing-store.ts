import type { Store, StoreTarget } from '../../src/store/types.js';

/**
 * Wraps a real store so that the n-th update inside the transaction throws after the earlier ones ran:
 * the way to prove that a failure half-way leaves nothing behind.
 */
export function failOnUpdate(
  open: (target: StoreTarget) => Promise<Store>,
  n: number,
): (target: StoreTarget) => Promise<Store> {
  return async (target) => {
    const store = await open(target);
    return {
      description: store.description,
      find: (...args) => store.find(...args),
      count: (...args) => store.count(...args),
      close: () => store.close(),
      assertTransactional: () => store.assertTransactional(),
      transaction: (work) =>
        store.transaction((tx) => {
          let updates = 0;
          return work({
            find: (...args) => tx.find(...args),
            count: (...args) => tx.count(...args),
            updateMany: async (...args) => {
              updates += 1;
              if (updates === n) throw new Error(`injected failure on update ${n}`);
              return tx.updateMany(...args);
            },
          });
        }),
    };
  };
}
