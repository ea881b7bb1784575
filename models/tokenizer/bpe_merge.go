package tokenizer

// heapMergeFrom is the pre-token length (in bytes) from which merge uses a heap of pairs, O(n log n), instead of
// rescanning the word after every merge, O(n²) in the worst case but faster on the short words of real text.
const heapMergeFrom = 64

// merge runs BPE on one pre-token: its bytes become symbols, the last one marked as ending the word, and the
// adjacent pair of lowest merge rank is merged everywhere (left to right) until no pair has a rank, as
// SimpleTokenizer.bpe does.
func (t *BPE) merge(tok string) []int32 {
	if tok == StartOfText || tok == EndOfText {
		return []int32{t.ids[tok]}
	}
	word := make([]int32, len(tok))
	for i := range len(tok) {
		word[i] = t.byteID[tok[i]]
	}
	word[len(word)-1] = t.finalID[tok[len(tok)-1]]
	if len(word) >= heapMergeFrom {
		return t.mergeHeap(word)
	}
	return t.mergeScan(word)
}

// mergeScan merges word by rescanning it for the lowest-ranked pair after every merge.
func (t *BPE) mergeScan(word []int32) []int32 {
	for len(word) > 1 {
		best := merge{rank: -1}
		var first, second int32
		for i := 0; i+1 < len(word); i++ {
			if m, ok := t.merges[pairKey(word[i], word[i+1])]; ok && (best.rank < 0 || m.rank < best.rank) {
				best, first, second = m, word[i], word[i+1]
			}
		}
		if best.rank < 0 {
			break
		}
		w := 0
		for i := 0; i < len(word); i++ {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				word[w] = best.id
				i++
			} else {
				word[w] = word[i]
			}
			w++
		}
		word = word[:w]
	}
	return word
}

// candidate is an adjacent pair of symbols that has a merge: the left symbol's node and both ids, as they were
// when the pair formed (a merge that changes either makes the candidate stale).
type candidate struct {
	rank, pos   int32
	left, right int32
}

// candidates is a binary min-heap of candidates by rank, then by position in the word (typed, so that pushing
// and popping allocate nothing).
type candidates []candidate

func (h candidates) less(i, j int) bool {
	return h[i].rank < h[j].rank || h[i].rank == h[j].rank && h[i].pos < h[j].pos
}

// push adds c.
func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

// pop removes and returns the least candidate.
func (h *candidates) pop() candidate {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(q) && q.less(l, least) {
			least = l
		}
		if r < len(q) && q.less(r, least) {
			least = r
		}
		if least == i {
			break
		}
		q[i], q[least] = q[least], q[i]
		i = least
	}
	*h = q
	return top
}

// mergeHeap gives mergeScan's result in O(n log n). The word is a linked list of nodes (a merge keeps the left
// node, so node order is word order); every adjacent pair with a merge is a candidate on a heap. The pairs of
// the lowest rank are merged left to right, all of them before any pair they create is considered (pairs
// created by a merge join a longer symbol, so none has the rank being merged, but one may have a lower rank, and
// SimpleTokenizer considers it only after the whole pass); candidates whose symbols changed are skipped.
func (t *BPE) mergeHeap(word []int32) []int32 {
	n := len(word)
	next, prev := make([]int32, n), make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	h := make(candidates, 0, n)
	add := func(list *candidates, p int32) {
		if p < 0 || next[p] < 0 {
			return
		}
		if m, ok := t.merges[pairKey(word[p], word[next[p]])]; ok {
			*list = append(*list, candidate{m.rank, p, word[p], word[next[p]]})
		}
	}
	var created candidates
	for i := range n - 1 {
		add(&created, int32(i))
	}
	for _, c := range created {
		h.push(c)
	}
	valid := func(c candidate) bool {
		return word[c.pos] == c.left && next[c.pos] >= 0 && word[next[c.pos]] == c.right
	}
	for len(h) > 0 {
		rank := h[0].rank
		created = created[:0]
		for len(h) > 0 && h[0].rank == rank {
			c := h.pop()
			if !valid(c) {
				continue
			}
			q := next[c.pos]
			word[c.pos] = t.merges[pairKey(c.left, c.right)].id
			word[q] = -1 // dead
			next[c.pos] = next[q]
			if next[q] >= 0 {
				prev[next[q]] = c.pos
			}
			add(&created, prev[c.pos])
			add(&created, c.pos)
		}
		for _, c := range created {
			h.push(c)
		}
	}
	out := word[:0]
	for p := int32(0); p >= 0; p = next[p] {
		out = append(out, word[p])
	}
	return out
}
