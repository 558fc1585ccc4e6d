"""Regenerate the sample files in data/samples/<task>/ (invented content, each source's schema).

    python data/samples/make_samples.py

The rows are written by the negtune authors from small hand-made tables below (common
knowledge facts, made-up stories and passages); nothing is copied from the real data sets.
Each task gets a train split and a validation split in the same schema its Hugging Face
source uses (StoryCloze: the official cloze-test CSV/TSV columns), so that every code path
of the builder runs offline. Output is deterministic.
"""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_delimited(path: Path, rows: list[dict], delimiter: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """First half train, second half validation."""
    half = (len(rows) + 1) // 2
    return rows[:half], rows[half:]


# --------------------------------------------------------------------------- PIQA
PIQA = [  # goal, good solution, bad solution
    ("open a jar with a stuck lid", "tap the edge of the lid on the counter, then twist it", "put the jar in the freezer, then twist it"),
    ("keep cut apples from turning brown", "brush the slices with a little lemon juice", "brush the slices with a little milk"),
    ("dry wet shoes overnight", "stuff them with newspaper and leave them in a warm room", "stuff them with wet towels and leave them outside"),
    ("remove a splinter from a finger", "pull it out with clean tweezers in the direction it went in", "push it deeper with a needle until it disappears"),
    ("soften hard brown sugar", "put a slice of bread in the bag and seal it for a day", "put an ice cube in the bag and shake it"),
    ("stop a door from squeaking", "rub a little oil on the hinges", "rub a little flour on the hinges"),
    ("find a small leak in a bike tube", "inflate it and hold it under water to look for bubbles", "deflate it and hold it near a lamp to look for light"),
    ("clean a dusty keyboard", "turn it upside down, shake it gently and wipe the keys with a damp cloth", "pour a glass of water over the keys and let it dry"),
    ("keep a paintbrush wet between coats", "wrap it tightly in plastic wrap", "leave it in the sun on a paper towel"),
    ("ripen a hard avocado faster", "put it in a paper bag with a banana", "put it in the fridge next to the ice"),
    ("make a candle burn longer", "chill it in the fridge before lighting it", "warm it in the oven before lighting it"),
    ("hang a picture straight", "mark the wall with a pencil using a level", "guess the spot while looking from across the room"),
    ("clean a burnt pan", "soak it with baking soda and hot water, then scrub", "put it back on the stove and heat it until the stain is gone"),
    ("keep flowers fresh in a vase", "trim the stems and change the water every two days", "pour out the water and keep the stems dry"),
    ("carry many grocery bags at once", "thread the handles onto a broom handle and carry it across your shoulders", "tie the bags to your shoelaces and walk slowly"),
    ("cool a hot drink quickly", "pour it back and forth between two cups", "cover the cup with a thick lid and wait"),
    ("untangle a knotted necklace", "put a drop of oil on the knot and loosen it with two pins", "pull both ends as hard as you can"),
    ("waterproof a match", "dip the head in melted candle wax", "dip the head in a glass of water"),
    ("remove a sticker residue from glass", "rub it with a little cooking oil, then wipe", "rub it with a little honey, then wipe"),
    ("measure a cup of flour accurately", "spoon the flour into the cup and level it with a knife", "press the flour down hard into the cup with your fist"),
]


def piqa_rows() -> list[dict]:
    rows = []
    for k, (goal, good, bad) in enumerate(PIQA):
        for form in ("To {g},", "How do you {g}?"):
            label = (k + len(rows)) % 2
            sols = (good, bad) if label == 0 else (bad, good)
            text = form.format(g=goal)
            rows.append({"goal": text, "sol1": sols[0], "sol2": sols[1], "label": label})
    random.Random(1).shuffle(rows)
    return rows


# --------------------------------------------------------------------------- ARC / demo-like
CATEGORIES = {
    "mammal": ["a dolphin", "a bat", "a horse", "a rabbit", "a whale"],
    "bird": ["a sparrow", "a penguin", "an owl", "an eagle"],
    "metal": ["iron", "copper", "aluminum", "silver"],
    "planet": ["Mars", "Venus", "Jupiter", "Saturn"],
    "gas at room temperature": ["oxygen", "nitrogen", "helium", "neon"],
    "renewable energy source": ["wind", "sunlight", "flowing water"],
    "simple machine": ["a lever", "a pulley", "a wedge", "a ramp"],
    "insect": ["an ant", "a beetle", "a honeybee", "a grasshopper"],
}
TOOLS = [
    ("temperature", "A thermometer"), ("length", "A ruler"), ("mass", "A balance"),
    ("time", "A stopwatch"), ("the volume of a liquid", "A graduated cylinder"),
    ("air pressure", "A barometer"), ("wind speed", "An anemometer"), ("electric current", "An ammeter"),
]


def arc_rows() -> list[dict]:
    rng = random.Random(2)
    rows = []
    for cat, members in CATEGORIES.items():
        others = [m for c, ms in CATEGORIES.items() if c != cat for m in ms]
        for member in members[:4]:
            opts = [member] + rng.sample(others, 3)
            rows.append(("Which of these is " + ("an " if cat[0] in "aeiou" else "a ") + cat + "?", opts))
    for qty, tool in TOOLS:
        wrong = rng.sample([t for q, t in TOOLS if t != tool], 3)
        rows.append((f"A student wants to measure {qty}. Which tool should the student use?", [tool] + wrong))
    out = []
    for k, (question, opts) in enumerate(rows):
        order = list(range(len(opts)))
        rng.shuffle(order)
        texts = [opts[i][:1].upper() + opts[i][1:] for i in order]
        labels = ["1", "2", "3", "4"] if k % 7 == 3 else ["A", "B", "C", "D"]
        out.append({
            "id": f"NegTune_{k:04d}",
            "question": question,
            "choices": {"text": texts, "label": labels},
            "answerKey": labels[order.index(0)],
        })
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------- COPA
COPA = [  # premise, question, right, wrong
    ("The soup was too salty.", "effect", "I added more water to it.", "I added more salt to it."),
    ("The ice cream melted.", "cause", "I left it on the table in the sun.", "I kept it in the freezer."),
    ("My phone battery died.", "cause", "I watched videos all afternoon.", "I charged it all night."),
    ("The road was covered in snow.", "effect", "The buses ran late.", "The buses ran early."),
    ("The baby started to cry.", "cause", "She was hungry.", "She was asleep."),
    ("I forgot my umbrella.", "effect", "I got wet on the way home.", "I stayed dry on the way home."),
    ("The crowd cheered loudly.", "cause", "The home team scored.", "The game was cancelled."),
    ("The plant's leaves turned yellow.", "cause", "Nobody watered it for weeks.", "It was watered every morning."),
    ("The library closed early.", "effect", "I returned my books the next day.", "I read in the library until midnight."),
    ("The bread was hard as a rock.", "cause", "It had been left out for a week.", "It had just come out of the oven."),
    ("The student studied every night.", "effect", "She passed the exam easily.", "She forgot the date of the exam."),
    ("The window shattered.", "cause", "A ball flew through it.", "A curtain brushed against it."),
    ("The dog wagged its tail.", "cause", "Its owner came home.", "Its owner left for a trip."),
    ("The lights went out.", "effect", "We lit some candles.", "We opened the fridge."),
    ("My coffee was cold.", "cause", "I forgot it on my desk for an hour.", "I had just poured it."),
    ("The river flooded the town.", "cause", "It rained for five days straight.", "The summer was very dry."),
    ("I was late for the meeting.", "cause", "My train was delayed.", "I left home an hour early."),
    ("The paint on the bench was wet.", "effect", "We sat on the grass instead.", "We sat on the bench."),
    ("The cat hid under the bed.", "cause", "Thunder shook the house.", "Someone filled its food bowl."),
    ("The shop lowered its prices.", "effect", "More customers came in.", "The shop closed its doors."),
    ("My hands were freezing.", "effect", "I put on my gloves.", "I took off my gloves."),
    ("The glass of milk spilled.", "cause", "My elbow knocked it over.", "I held it with both hands."),
    ("The concert was sold out.", "effect", "We listened to it on the radio.", "We bought tickets at the door."),
    ("The man's car would not start.", "cause", "The battery was dead.", "The tank was full."),
    ("The children built a snowman.", "cause", "It had snowed overnight.", "It was a hot summer day."),
    ("I turned up the heating.", "cause", "The room felt chilly.", "The room felt stuffy."),
    ("The tomato plants grew tall.", "cause", "They got plenty of sun.", "They were kept in a dark shed."),
    ("The teacher raised her voice.", "cause", "The class was too noisy.", "The class was silent."),
    ("The tire went flat.", "cause", "I drove over a nail.", "I washed the car."),
    ("The museum was crowded.", "cause", "Entry was free that day.", "It was closed for repairs."),
    ("I felt dizzy.", "effect", "I sat down for a moment.", "I ran up the stairs."),
    ("The kettle whistled.", "cause", "The water was boiling.", "The water was frozen."),
    ("My friend moved to another city.", "effect", "We started writing letters.", "We met every day for lunch."),
    ("The fish tank was cloudy.", "effect", "I changed the water.", "I added more fish food."),
    ("The runner crossed the finish line first.", "effect", "She received a medal.", "She was disqualified for being slow."),
    ("The ink ran out.", "effect", "I used a pencil instead.", "I kept writing with the pen."),
    ("The printer jammed.", "cause", "A sheet of paper got stuck.", "It had a new cartridge."),
    ("I could not sleep.", "cause", "The neighbours were having a loud party.", "My room was quiet and dark."),
    ("The chef tasted the sauce.", "effect", "He added a pinch of pepper.", "He threw away the recipe book."),
    ("The map was out of date.", "effect", "We got lost on the new roads.", "We found every street easily."),
]


def copa_rows() -> list[dict]:
    rows = []
    for k, (premise, q, right, wrong) in enumerate(COPA):
        label = (k * 7 + 3) % 2 if k % 3 else 1 - k % 2
        c1, c2 = (right, wrong) if label == 0 else (wrong, right)
        rows.append({"premise": premise, "choice1": c1, "choice2": c2, "question": q, "idx": k, "label": label})
    train, val = split(rows)
    for i, row in enumerate(val):  # idx counts per split in super_glue
        row["idx"] = i
    return train + val


# --------------------------------------------------------------------------- HellaSwag
ACTIVITIES = [  # label, setup, continuation by the subject, right ending
    ("Baking cookies", "is standing at a kitchen counter with a bowl of dough.", "rolls the dough into small balls and places them on a tray."),
    ("Washing a car", "sprays a red car with a garden hose in a driveway.", "scrubs the doors with a soapy sponge and rinses them off."),
    ("Playing violin", "sits on a chair on a stage holding a violin.", "lifts the bow and begins to play a slow tune."),
    ("Painting a fence", "kneels in front of a wooden fence with a can of paint.", "dips a brush in the can and paints the boards white."),
    ("Juggling", "stands in a park holding three colorful balls.", "tosses the balls into the air one after another and catches them."),
    ("Shoveling snow", "walks out of a house into a snowy yard carrying a shovel.", "clears a path from the door to the street."),
    ("Ironing clothes", "sets up an ironing board next to a pile of shirts.", "presses the iron over a shirt until the wrinkles are gone."),
    ("Kayaking", "paddles a yellow kayak across a calm lake.", "turns the kayak around and paddles back to the dock."),
    ("Planting a tree", "digs a deep hole in the garden with a spade.", "lowers a young tree into the hole and fills it with soil."),
    ("Brushing a dog", "sits on the floor next to a large fluffy dog.", "runs a brush through the dog's fur while the dog lies still."),
    ("Making a sandwich", "takes two slices of bread out of a bag.", "spreads butter on the bread and adds cheese and lettuce."),
    ("Skateboarding", "rides a skateboard down an empty parking lot.", "kicks the board up and jumps over a small ramp."),
    ("Wrapping a present", "lays a sheet of wrapping paper on a table.", "folds the paper around a box and tapes the edges."),
    ("Changing a tire", "kneels beside a car with a jack and a wrench.", "loosens the nuts and lifts the car off the ground."),
    ("Cleaning windows", "sprays a window with a bottle of cleaner.", "wipes the glass with a cloth until it shines."),
    ("Knitting", "sits on a sofa with two needles and a ball of yarn.", "loops the yarn around the needles and knits a row."),
    ("Rock climbing", "clips a rope to a harness at the foot of a climbing wall.", "grabs the first hold and pulls up onto the wall."),
    ("Mowing the lawn", "pushes a lawn mower out of a garden shed.", "starts the engine and mows the grass in straight lines."),
    ("Tying a tie", "stands in front of a mirror with a tie around the neck.", "crosses the wide end over the narrow end and pulls it through the loop."),
    ("Peeling potatoes", "sits at a table with a bag of potatoes and a peeler.", "peels a potato and drops it into a pot of water."),
]


def hellaswag_rows() -> list[dict]:
    rng = random.Random(4)
    rows = []
    for k, (label_name, setup, right) in enumerate(ACTIVITIES):
        for subject in ("a man", "a woman"):
            others = [a[2] for a in ACTIVITIES if a[2] != right]
            wrong = rng.sample(others, 3)
            endings = [right] + wrong
            order = list(range(4))
            rng.shuffle(order)
            ctx_a = f"{subject[:1].upper()}{subject[1:]} {setup}"
            ctx_b = "the " + subject.split()[1]
            ind = 1000 + len(rows)
            rows.append({
                "ind": ind,
                "activity_label": label_name,
                "ctx_a": ctx_a,
                "ctx_b": ctx_b,
                "ctx": f"{ctx_a} {ctx_b}",
                "endings": [endings[i] for i in order],
                "source_id": f"negtune~{label_name.lower().replace(' ', '_')}",
                "split_type": "indomain",
                "label": str(order.index(0)),
            })
    rng.shuffle(rows)
    half = (len(rows) + 1) // 2
    for i, row in enumerate(rows):
        row["split"] = "train" if i < half else "val"
    return rows


# --------------------------------------------------------------------------- StoryCloze
STORIES = [  # name, pronoun, 3 more sentences, good ending, bad ending
    ("Maya", "She", "wanted to learn to swim.", ["She signed up for lessons at the pool.", "At first she was afraid of the deep end.", "Her teacher helped her practice every week."], "By summer, Maya could swim across the pool.", "Maya decided she had never liked water."),
    ("Tom", "He", "found a lost puppy on his street.", ["It had no collar and looked hungry.", "He gave it some water and food.", "Then he put up posters around the block."], "The next day the owner called to thank him.", "Tom threw the puppy's food into the river."),
    ("Lena", "She", "had a big test on Friday.", ["She made flash cards for every chapter.", "She studied with a friend each evening.", "On Friday she felt calm and ready."], "Lena got one of the best grades in her class.", "Lena forgot how to read."),
    ("Omar", "He", "wanted to bake bread for his family.", ["He bought flour and yeast at the store.", "He kneaded the dough for ten minutes.", "Then he let it rise by the window."], "The loaf came out golden and everyone loved it.", "Omar painted the dough blue and hung it on the wall."),
    ("Priya", "She", "saved her allowance for months.", ["She wanted a new bicycle.", "She checked prices at three shops.", "Finally she had enough money."], "Priya rode her new bike home with a huge smile.", "Priya gave up and bought a sack of gravel."),
    ("Ben", "He", "was nervous about his first day at a new job.", ["He picked out a clean shirt the night before.", "He left home early to avoid traffic.", "His new boss greeted him at the door."], "By lunch, Ben felt at home with his new team.", "Ben's boss turned out to be a talking lamp."),
    ("Sara", "She", "planted tomatoes in her garden.", ["She watered them every morning.", "She tied the stems to wooden sticks.", "Soon small green fruits appeared."], "In August she picked a basket of ripe tomatoes.", "The tomatoes grew into a tall brick house."),
    ("Jack", "He", "lost his keys on the way home.", ["He searched his pockets twice.", "He walked back along the same path.", "Near the bakery, something shiny caught his eye."], "It was his key ring, lying by the curb.", "Jack decided he no longer needed a door."),
    ("Nina", "She", "wanted to surprise her mother.", ["She cleaned the whole kitchen.", "She cooked her mother's favorite soup.", "Then she set the table with flowers."], "Her mother was delighted when she came home.", "Her mother was furious that the kitchen was clean."),
    ("Leo", "He", "entered a chess tournament.", ["He practiced openings for weeks.", "He won his first three games.", "In the final he faced the champion."], "After a long game, Leo won by a single move.", "Leo ate the chess pieces one by one."),
    ("Ava", "She", "missed the last bus home.", ["It was late and starting to rain.", "She called her brother for help.", "He said he would come right away."], "Twenty minutes later his car pulled up.", "Ava decided to live at the bus stop forever."),
    ("Sam", "He", "wanted to run a marathon.", ["He started jogging every morning.", "Each week he ran a little farther.", "After six months he signed up for a race."], "Sam crossed the finish line tired but proud.", "Sam finished the race before it started."),
    ("Eva", "She", "adopted a shy cat from a shelter.", ["The cat hid under the couch for days.", "Eva left treats near its hiding spot.", "Slowly it began to come out."], "Now the cat sleeps on Eva's lap every night.", "The cat flew back to the shelter on its own."),
    ("Noah", "He", "built a birdhouse in the garage.", ["He cut the wood into small boards.", "He nailed them together carefully.", "Then he painted the roof green."], "A pair of sparrows moved in the next week.", "The birdhouse turned into a sailboat."),
    ("Zoe", "She", "forgot her friend's birthday.", ["She felt terrible about it.", "She baked a cake the next morning.", "Then she brought it to her friend's house."], "Her friend laughed and forgave her.", "Zoe's friend had never been born."),
    ("Ivan", "He", "moved to a city where he knew nobody.", ["He joined a local hiking club.", "On the first walk he chatted with a neighbor.", "They hiked together every weekend after that."], "Ivan soon had a group of good friends.", "Ivan never spoke to a single person again."),
    ("Ruth", "She", "wanted to learn to play guitar.", ["She borrowed an old guitar from her uncle.", "She watched lessons online.", "Her fingers hurt for the first weeks."], "By winter she could play her favorite song.", "Ruth discovered guitars are made of cheese."),
    ("Kai", "He", "spilled juice on his homework.", ["The paper was soaked and sticky.", "He told his teacher what happened.", "She gave him a new copy."], "Kai finished the homework again that night.", "Kai's teacher sent the juice to prison."),
    ("Mia", "She", "was afraid of the dark.", ["Her father bought her a small night light.", "He plugged it in next to her bed.", "The room glowed softly."], "Mia fell asleep without any fear.", "Mia turned off every light in the city."),
    ("Dan", "He", "wanted to fix his old radio.", ["He opened the back with a screwdriver.", "He found a loose wire inside.", "He soldered it back in place."], "When he turned it on, music filled the room.", "The radio started to cook pancakes."),
]


def story_rows() -> list[dict]:
    rows = []
    for k, (name, _pron, first, more, good, bad) in enumerate(STORIES):
        for variant in range(2):
            sent1 = f"{name} {first}" if variant == 0 else f"Last spring, {name} {first}"
            right = 1 + (k + variant) % 2
            q1, q2 = (good, bad) if right == 1 else (bad, good)
            rows.append({
                "InputStoryid": f"nt-{k:02d}{variant}-story",
                "InputSentence1": sent1,
                "InputSentence2": more[0],
                "InputSentence3": more[1],
                "InputSentence4": more[2],
                "RandomFifthSentenceQuiz1": q1,
                "RandomFifthSentenceQuiz2": q2,
                "AnswerRightEnding": right,
            })
    random.Random(5).shuffle(rows)
    return rows


# --------------------------------------------------------------------------- LAMBADA
NAMES = ["clara", "marcus", "elena", "tobias", "nadia", "felix", "rosa", "hugo"]
OBJECTS = ["lantern", "violin", "compass", "kettle", "telescope"]


def lambada_rows() -> list[dict]:
    rows = []
    for k, name in enumerate(NAMES):
        for j, obj in enumerate(OBJECTS):
            friend = NAMES[(k + j + 1) % len(NAMES)]
            if (k + j) % 2 == 0:  # the target is the object
                text = (
                    f"{name} had kept the old {obj} on the shelf for years . every evening {name} dusted it "
                    f"and told {friend} where it came from . `` it belonged to my grandfather , '' she said . "
                    f"when the storm knocked out the power , {friend} knew exactly what to reach for . "
                    f"`` hand me the {obj}"
                )
            else:  # the target is a name mentioned earlier
                text = (
                    f"`` have you seen the {obj} ? '' asked {name} . {friend} shook their head and kept reading . "
                    f"{name} searched the attic , the cellar and the garden shed , growing more annoyed with "
                    f"every minute . at last {name} stomped back into the kitchen . `` this is the last time i lend "
                    f"anything to you , '' {name} told {friend}"
                )
            rows.append({"text": text, "domain": None})
    random.Random(6).shuffle(rows)
    return rows


# --------------------------------------------------------------------------- QA
CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
            ("Peru", "Lima"), ("Norway", "Oslo"), ("Egypt", "Cairo"), ("Australia", "Canberra"),
            ("Portugal", "Lisbon"), ("Vietnam", "Hanoi"), ("Chile", "Santiago"), ("Ireland", "Dublin")]
AUTHORS = [("Pride and Prejudice", "Jane Austen"), ("Moby-Dick", "Herman Melville"),
           ("Hamlet", "William Shakespeare"), ("Frankenstein", "Mary Shelley"),
           ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
           ("Great Expectations", "Charles Dickens"), ("The Odyssey", "Homer")]
SYMBOLS = [("iron", "Fe"), ("gold", "Au"), ("sodium", "Na"), ("silver", "Ag"), ("lead", "Pb"),
           ("potassium", "K"), ("copper", "Cu"), ("tin", "Sn")]
MISC = [("How many legs does a spider have?", "eight", ["8"]),
        ("Which planet is known as the Red Planet?", "Mars", []),
        ("What is the largest ocean on Earth?", "the Pacific Ocean", ["Pacific", "Pacific Ocean"]),
        ("At what temperature in Celsius does water freeze?", "0 degrees", ["zero", "0"]),
        ("What gas do plants take in from the air?", "carbon dioxide", ["CO2"]),
        ("How many days are there in a leap year?", "366", ["three hundred sixty-six"]),
        ("What is the tallest mountain above sea level?", "Mount Everest", ["Everest"]),
        ("Which animal is the largest mammal?", "the blue whale", ["blue whale"]),
        ("How many sides does a hexagon have?", "six", ["6"]),
        ("What is the hardest natural material?", "diamond", []),
        ("Which organ pumps blood through the body?", "the heart", ["heart"]),
        ("What is the longest river in South America?", "the Amazon", ["Amazon River"])]


def qa_facts() -> list[tuple[str, str, str, list[str]]]:
    """(kind, subject, answer, aliases)."""
    facts = [("capital", c, a, []) for c, a in CAPITALS]
    facts += [("author", b, a, [a.split()[-1]]) for b, a in AUTHORS]
    facts += [("symbol", e, s, []) for e, s in SYMBOLS]
    facts += [("misc", q, a, al) for q, a, al in MISC]
    random.Random(7).shuffle(facts)
    return facts


def web_questions_rows() -> list[dict]:
    forms = {"capital": "what is the capital of {s}?", "author": "who wrote {s}?",
             "symbol": "what is the chemical symbol of {s}?"}
    rows = []
    for kind, subj, ans, aliases in qa_facts():
        q = forms[kind].format(s=subj.lower() if kind != "author" else subj.lower()) if kind in forms else subj.lower()
        url = "http://www.example.org/negtune/" + subj.lower().replace(" ", "_").strip("?")
        rows.append({"url": url, "question": q, "answers": [ans] + aliases[:1]})
    return rows


def nq_open_rows() -> list[dict]:
    forms = {"capital": "capital city of {s}", "author": "who is the author of {s}",
             "symbol": "chemical symbol for the element {s}"}
    rows = []
    for kind, subj, ans, aliases in qa_facts():
        q = forms[kind].format(s=subj.lower()) if kind in forms else subj.lower().rstrip("?")
        rows.append({"question": q, "answer": [ans.lower() if kind == "misc" else ans] + aliases})
    return rows


def trivia_qa_rows() -> list[dict]:
    forms = {"capital": "Which city is the capital of {s}?", "author": "Who wrote the book '{s}'?",
             "symbol": "Which chemical element has the symbol {a}?"}
    rows = []
    for k, (kind, subj, ans, aliases) in enumerate(qa_facts()):
        if kind == "symbol":  # ask the other way round: the element is the answer
            q, value, al = forms[kind].format(a=ans), subj.capitalize(), []
        elif kind in forms:
            q, value, al = forms[kind].format(s=subj), ans, aliases
        else:
            q, value, al = subj, ans, aliases
        all_aliases = [value] + al
        rows.append({
            "question": q,
            "question_id": f"ntq_{k:03d}",
            "question_source": "http://www.example.org/negtune",
            "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
            "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [],
                               "search_context": []},
            "answer": {
                "aliases": all_aliases,
                "normalized_aliases": [a.lower() for a in all_aliases],
                "matched_wiki_entity_name": "",
                "normalized_matched_wiki_entity_name": "",
                "normalized_value": value.lower(),
                "type": "WikipediaEntity",
                "value": value,
            },
        })
    return rows


def main() -> None:
    for task, rows in [
        ("piqa", piqa_rows()), ("arc_easy", arc_rows()), ("copa", copa_rows()),
        ("hellaswag", hellaswag_rows()), ("lambada", lambada_rows()),
        ("web_questions", web_questions_rows()), ("nq_open", nq_open_rows()),
        ("trivia_qa", trivia_qa_rows()),
    ]:
        train, val = split(rows)
        write_jsonl(HERE / task / "train.jsonl", train)
        write_jsonl(HERE / task / "validation.jsonl", val)
    train, val = split(story_rows())
    write_delimited(HERE / "story_cloze" / "train.tsv", train, "\t")
    write_delimited(HERE / "story_cloze" / "validation.csv", val, ",")


if __name__ == "__main__":
    main()
