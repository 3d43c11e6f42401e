/**
 * An unbounded push queue read as an async iterable (by one reader).
 *
 * Used for the request side of a Session stream and for the events of each
 * generation multiplexed on it.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;

  /** Adds an item; ignored once the queue has ended. */
  push(item: T): void {
    if (this.ended) {
      return;
    }
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  /** Ends the queue: the reader gets the items pushed so far, then the end. */
  end(): void {
    this.finish(undefined);
  }

  /** Ends the queue with an error, thrown to the reader after the items pushed so far. */
  fail(error: unknown): void {
    this.finish({ error });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private finish(failure: { error: unknown } | undefined): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.failure = failure;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      if (failure !== undefined) {
        waiter.reject(failure.error);
      } else {
        waiter.resolve({ value: undefined, done: true });
      }
    }
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      return Promise.resolve({ value: this.items.shift() as T, done: false });
    }
    if (this.ended) {
      return this.failure !== undefined
        ? Promise.reject(this.failure.error)
        : Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter !== undefined) {
      return Promise.reject(new Error("AsyncQueue supports a single reader"));
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: (): Promise<IteratorResult<T>> => {
        this.items.length = 0;
        this.ended = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
